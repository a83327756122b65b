-- Foundation: the tenant registry (control plane), platform secrets, signing keys, and the
-- first tenant tables (users, client entities, idempotency records).
--
-- Rules every tenant table follows (checked by schema tests):
--   * tenant_id uuid NOT NULL leads the primary key and every index and unique key;
--   * ENABLE and FORCE ROW LEVEL SECURITY, with one policy on app.tenant_id for USING and
--     WITH CHECK, so a missing tenant setting matches no row (fail closed);
--   * the runtime role gets only the privileges the application needs.
-- {{runtime_role}} is replaced with the quoted runtime role name when the migration runs.

-- Control plane -----------------------------------------------------------------------

create table platform_secrets (
  name text primary key,
  value text not null,
  created_at timestamptz not null default now()
);

create table signing_keys (
  kid text primary key,
  algorithm text not null,
  public_jwk jsonb not null,
  private_jwk_sealed text not null,
  created_at timestamptz not null default now(),
  retired_at timestamptz
);

create table tenants (
  id uuid primary key,
  name text not null,
  tier text not null,
  status text not null check (status in ('provisioning', 'active', 'suspended', 'offboarded')),
  placement_model text not null check (placement_model in ('pool', 'bridge', 'silo')),
  placement_cluster text not null,
  placement_database text not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create unique index tenants_name_key on tenants (lower(name));

-- The registry is operator data: the owner role reads it whole (not FORCEd), while the
-- runtime role sees only the row of the tenant whose scope it is in.
alter table tenants enable row level security;
create policy tenant_self on tenants
  using (id = nullif(current_setting('app.tenant_id', true), '')::uuid);
grant select on tenants to {{runtime_role}};

-- Application plane -------------------------------------------------------------------

create table users (
  tenant_id uuid not null,
  id uuid not null,
  email text not null check (email = lower(email)),
  password_hash text not null,
  roles text[] not null,
  created_at timestamptz not null default now(),
  primary key (tenant_id, id)
);
create unique index users_tenant_email_key on users (tenant_id, email);

create table entities (
  tenant_id uuid not null,
  id uuid not null,
  name text not null,
  entity_type text check (entity_type in
    ('sole_proprietorship', 'partnership', 's_corporation', 'c_corporation', 'nonprofit')),
  base_currency char(3) not null check (base_currency ~ '^[A-Z]{3}$'),
  fiscal_year_end char(5) not null check (fiscal_year_end ~ '^(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$'),
  status text not null default 'active' check (status in ('active', 'archived')),
  created_by uuid not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (tenant_id, id),
  foreign key (tenant_id, created_by) references users (tenant_id, id)
);
create unique index entities_tenant_name_key on entities (tenant_id, lower(name));

-- One row per Idempotency-Key: the request's hash and the response it produced, written in
-- the same transaction as the work, so a retry returns exactly what the first call returned.
create table idempotency_keys (
  tenant_id uuid not null,
  key text not null,
  route text not null,
  request_hash text not null,
  response_status integer not null,
  response_body jsonb not null,
  created_at timestamptz not null default now(),
  primary key (tenant_id, key)
);

alter table users enable row level security;
alter table users force row level security;
create policy tenant_isolation on users
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);

alter table entities enable row level security;
alter table entities force row level security;
create policy tenant_isolation on entities
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);

alter table idempotency_keys enable row level security;
alter table idempotency_keys force row level security;
create policy tenant_isolation on idempotency_keys
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);

grant select, insert, update on users to {{runtime_role}};
grant select, insert, update on entities to {{runtime_role}};
grant select, insert on idempotency_keys to {{runtime_role}};
