-- Metering, cost attribution and billing of firms: CONTROL-PLANE tables.
--
-- These tables are operator data, like `tenants`: they are read and written only by the
-- owner role (the metering flusher, the operator API), and the runtime role gets no
-- privilege on them at all, so no tenant request can read another firm's usage. They name
-- the firm in a column called `tenant` (not `tenant_id`) because they are not tenant
-- tables in the sense of the schema rules: no tenant scope ever reads them, and a forced
-- tenant policy would hide every row from the cross-tenant aggregation the operator needs.

-- One row per usage event; the event id makes a retried flush insert nothing twice.
create table usage_events (
  id uuid primary key,
  tenant uuid not null,
  metric text not null check (metric ~ '^[a-z][a-z0-9_]{0,62}$'),
  quantity bigint not null check (quantity >= 0),
  occurred_at timestamptz not null,
  properties jsonb not null default '{}'::jsonb,
  recorded_at timestamptz not null default now()
);
create index usage_events_tenant_time on usage_events (tenant, occurred_at);

-- Per tenant, metric and UTC bucket: the sum (counters), the largest single quantity
-- (gauges such as storage bytes) and the number of events. Maintained in the same
-- statement that inserts the events, from the rows actually inserted, so a duplicate
-- event changes neither table.
create table usage_rollups (
  tenant uuid not null,
  metric text not null,
  granularity text not null check (granularity in ('hour', 'day', 'month')),
  bucket_start timestamptz not null,
  quantity_sum numeric(38, 0) not null,
  quantity_max bigint not null,
  event_count bigint not null,
  primary key (tenant, granularity, bucket_start, metric)
);

-- AWS Cost and Usage Report imports: one row per imported file (the file's sha256 makes a
-- re-import of the same file a no-op); the latest import of a month is the one in force.
create table cost_imports (
  id uuid primary key,
  month date not null check (extract(day from month) = 1),
  source_sha256 text not null unique,
  file_name text not null,
  line_count integer not null,
  total_nanos numeric(38, 0) not null,
  imported_at timestamptz not null default now()
);
create index cost_imports_month on cost_imports (month, imported_at);

-- The import's cost summed per product and tenant tag, exact in nano-units of the currency
-- (CUR costs carry up to 10 decimals); tenant is null for untagged (shared) cost.
create table cost_import_lines (
  import_id uuid not null references cost_imports (id) on delete cascade,
  line_no integer not null,
  product_code text not null,
  tenant uuid,
  amount_nanos numeric(38, 0) not null,
  primary key (import_id, line_no)
);
