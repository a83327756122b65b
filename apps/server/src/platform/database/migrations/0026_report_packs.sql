-- Report packs (ledger/reports/report-packs.ts): a client entity's trial balance, income
-- statement and balance sheet for a period, rendered by a `reports.pack` job and kept as one
-- ZIP archive for download. Entity-owned like the books, so both the tenant policy and the
-- entity-scope policy apply to every read. A pack is written once by the job that made it
-- (its id is the job's) and never changed.
create table report_packs (
  tenant_id uuid not null,
  entity_id uuid not null,
  id uuid not null,
  period_from date not null,
  period_to date not null check (period_to >= period_from),
  files jsonb not null check (jsonb_typeof(files) = 'array'),
  archive bytea not null,
  archive_sha256 bytea not null check (octet_length(archive_sha256) = 32),
  requested_by text not null check (length(requested_by) between 1 and 200),
  created_at timestamptz not null default now(),
  primary key (tenant_id, id),
  foreign key (tenant_id, entity_id) references entities (tenant_id, id)
);
create index report_packs_entity on report_packs (tenant_id, entity_id, created_at);

alter table report_packs enable row level security;
alter table report_packs force row level security;
create policy tenant_isolation on report_packs
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
create policy entity_scope on report_packs as restrictive
  using (entity_visible(entity_id)) with check (entity_visible(entity_id));

grant select, insert on report_packs to {{runtime_role}};
