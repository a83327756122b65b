-- Identity and access (issue 4): roles and entity assignments, the tenant's regulatory tier,
-- invitations, rotating refresh tokens, TOTP MFA with recovery codes, API keys, and the
-- per-account state of sign-in throttling.
--
-- People and firms: a person who works for several firms has one user row per firm (the
-- same email in each), each with its own password, role and MFA. Sign-in names the firm, so
-- every token is for exactly one tenant and no table here spans tenants.
--
-- Every new tenant table follows the rules of 0001 (tenant_id leads every key, ENABLE and
-- FORCE RLS, one fail-closed policy on app.tenant_id). Secrets are stored only as hashes
-- (refresh tokens, invitations, API keys, recovery codes) or sealed under the master key
-- (TOTP secrets).

-- Control plane: the regulatory tier of a firm (MFA is required for irs-authorized and
-- sec-registered by default). The tier's `regulatoryTiers` list says which are allowed.
alter table tenants add column regulatory_tier text not null default 'standard'
  check (regulatory_tier in ('standard', 'irs-authorized', 'sec-registered'));

-- Users: exactly one role per membership (a person with two roles in one firm would get the
-- union of the permissions of one and the entity scope of the other), a status, MFA state
-- and the account half of sign-in throttling.
alter table users add constraint users_one_known_role check (
  cardinality(roles) = 1
  and roles[1] in ('owner', 'partner', 'manager', 'staff', 'client', 'auditor')
);
alter table users add column status text not null default 'active' check (status in ('active', 'disabled'));
alter table users add column mfa_secret_sealed text;
alter table users add column mfa_confirmed_at timestamptz;
alter table users add column mfa_last_step bigint;
alter table users add column failed_sign_ins integer not null default 0 check (failed_sign_ins >= 0);
alter table users add column locked_until timestamptz;
alter table users add column updated_at timestamptz not null default now();

-- Which client entities a staff or client user may see; turned into app.entity_scope.
create table user_entity_assignments (
  tenant_id uuid not null,
  user_id uuid not null,
  entity_id uuid not null,
  created_at timestamptz not null default now(),
  primary key (tenant_id, user_id, entity_id),
  foreign key (tenant_id, user_id) references users (tenant_id, id),
  foreign key (tenant_id, entity_id) references entities (tenant_id, id)
);
create index user_entity_assignments_entity on user_entity_assignments (tenant_id, entity_id);

-- Invitations: single use (accepted_at), expiring, the token stored as a sha-256 hash.
create table invitations (
  tenant_id uuid not null,
  id uuid not null,
  email text not null check (email = lower(email)),
  role text not null check (role in ('owner', 'partner', 'manager', 'staff', 'client', 'auditor')),
  entity_ids uuid[] not null default '{}',
  token_hash text not null,
  invited_by uuid not null,
  expires_at timestamptz not null,
  accepted_at timestamptz,
  accepted_user_id uuid,
  revoked_at timestamptz,
  created_at timestamptz not null default now(),
  primary key (tenant_id, id),
  foreign key (tenant_id, invited_by) references users (tenant_id, id)
);
create index invitations_email on invitations (tenant_id, email);

-- Refresh tokens: one row per issued token; a family is one sign-in. Using a token marks it
-- used and issues the next of its family; presenting a used one revokes the whole family.
create table refresh_tokens (
  tenant_id uuid not null,
  id uuid not null,
  family_id uuid not null,
  user_id uuid not null,
  token_hash text not null,
  amr text[] not null,
  auth_time timestamptz not null,
  expires_at timestamptz not null,
  used_at timestamptz,
  revoked_at timestamptz,
  created_at timestamptz not null default now(),
  primary key (tenant_id, id),
  foreign key (tenant_id, user_id) references users (tenant_id, id)
);
create index refresh_tokens_family on refresh_tokens (tenant_id, family_id);
create index refresh_tokens_user on refresh_tokens (tenant_id, user_id);

-- MFA recovery codes, each a sha-256 hash, usable once.
create table mfa_recovery_codes (
  tenant_id uuid not null,
  user_id uuid not null,
  code_hash text not null,
  used_at timestamptz,
  created_at timestamptz not null default now(),
  primary key (tenant_id, user_id, code_hash),
  foreign key (tenant_id, user_id) references users (tenant_id, id)
);

-- API keys: the secret is shown once and stored as a sha-256 hash; the id is in the key's
-- visible prefix so a key can be found (and named in logs) without its secret.
create table api_keys (
  tenant_id uuid not null,
  id uuid not null,
  name text not null,
  scope text not null check (scope in ('read', 'write')),
  entity_ids uuid[],
  secret_hash text not null,
  created_by uuid not null,
  expires_at timestamptz,
  revoked_at timestamptz,
  last_used_at timestamptz,
  created_at timestamptz not null default now(),
  primary key (tenant_id, id),
  foreign key (tenant_id, created_by) references users (tenant_id, id)
);

alter table user_entity_assignments enable row level security;
alter table user_entity_assignments force row level security;
create policy tenant_isolation on user_entity_assignments
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
create policy entity_scope on user_entity_assignments as restrictive
  using (entity_visible(entity_id))
  with check (entity_visible(entity_id));

alter table invitations enable row level security;
alter table invitations force row level security;
create policy tenant_isolation on invitations
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);

alter table refresh_tokens enable row level security;
alter table refresh_tokens force row level security;
create policy tenant_isolation on refresh_tokens
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);

alter table mfa_recovery_codes enable row level security;
alter table mfa_recovery_codes force row level security;
create policy tenant_isolation on mfa_recovery_codes
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);

alter table api_keys enable row level security;
alter table api_keys force row level security;
create policy tenant_isolation on api_keys
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);

grant select, insert, delete on user_entity_assignments to {{runtime_role}};
grant select, insert, update on invitations to {{runtime_role}};
grant select, insert, update on refresh_tokens to {{runtime_role}};
grant select, insert, update, delete on mfa_recovery_codes to {{runtime_role}};
grant select, insert, update on api_keys to {{runtime_role}};
