-- The row-by-row report of a job that works through rows (the entity import), written with
-- each batch in that batch's own tenant transaction. The import's checkpoint used to carry the
-- whole report so far, so every batch rewrote every earlier row's report: a 5,000-row import
-- serialised and stored about 13.5 MB of JSON, on the server's main thread. The checkpoint now
-- holds only the next row; the report is assembled from these rows when the job finishes. A
-- batch that rolls back takes its report rows with it, so a resumed attempt reports each row
-- exactly once. Like job_checkpoints, the table lives wherever the tenant's data does.
create table job_row_reports (
  tenant_id uuid not null,
  job_id uuid not null,
  row_no integer not null check (row_no >= 1),
  report jsonb not null check (jsonb_typeof(report) = 'object'),
  primary key (tenant_id, job_id, row_no)
);

alter table job_row_reports enable row level security;
alter table job_row_reports force row level security;
create policy tenant_isolation on job_row_reports
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);

grant select, insert on job_row_reports to {{runtime_role}};
