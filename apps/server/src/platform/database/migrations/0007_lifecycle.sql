-- Tenant lifecycle: provisioning plans and their step log, suspension, and checkpoints of
-- batch jobs of tenants that live in their own database.
--
-- Placement itself needs no new column: tenants.placement_model / placement_cluster /
-- placement_database (0001) map each tenant to its cluster and database.

-- Control plane ------------------------------------------------------------------------
-- Operator data like `tenants` and the metering tables: read and written only by the owner
-- role, no runtime grants, and the firm is named in a column called `tenant` (not tenant_id)
-- because no tenant scope ever reads these rows.

alter table tenants add column status_reason text;
alter table tenants add column status_changed_at timestamptz;
-- The schema (a hash of the migrations) a dedicated database was last brought to, so a start
-- migrates only the databases that are behind instead of opening every one of them.
alter table tenants add column placement_schema text;

-- What an onboarding needs to be applied again after a crash: the admin's email and password
-- hash (cleared once the admin user exists), and the per-tenant plan overrides asked for.
create table tenant_provisioning (
  tenant uuid primary key references tenants (id) on delete cascade,
  admin_email text not null,
  admin_password_hash text,
  applies integer not null default 0,
  started_at timestamptz not null default now(),
  finished_at timestamptz
);

-- The step log of a tenant's provisioning plan: one row per step, in plan order.
create table tenant_provisioning_steps (
  tenant uuid not null references tenants (id) on delete cascade,
  position integer not null check (position >= 1),
  step text not null,
  action text not null,
  status text not null check (status in ('pending', 'done', 'failed')),
  attempts integer not null default 0,
  outcome text,
  error text,
  started_at timestamptz,
  finished_at timestamptz,
  duration_ms integer,
  primary key (tenant, position)
);

-- Operator listing pages through the registry in id (UUIDv7, so creation) order.
create index tenants_status_id on tenants (status, id);

-- Application plane --------------------------------------------------------------------
-- The job queue lives in the shared database for every placement (one dispatcher claims
-- across all tenants). A tenant in its own database keeps its jobs' checkpoints here, in the
-- same transaction as the work a batch did, so a retried attempt resumes where the last
-- committed batch ended.
create table job_checkpoints (
  tenant_id uuid not null,
  job_id uuid not null,
  attempt integer not null,
  checkpoint jsonb not null,
  updated_at timestamptz not null default now(),
  primary key (tenant_id, job_id)
);

alter table job_checkpoints enable row level security;
alter table job_checkpoints force row level security;
create policy tenant_isolation on job_checkpoints
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);

grant select, insert, update on job_checkpoints to {{runtime_role}};
