-- Tamper-evident audit log per tenant (issue 4, item 8) and named operators (item 7).
-- Decision record: docs/decisions/0009-audit-hash-chain.md.
--
-- audit_events is append-only: the runtime role may only INSERT and SELECT, and a trigger
-- refuses UPDATE, DELETE and TRUNCATE even for the owner. Each tenant's events form a hash
-- chain: hash = sha256(prev_hash || canonical content), where the content is built by the
-- server (audit/audit-chain.ts) from the row's own columns, so a verifier recomputes it from
-- what is stored. audit_chain_heads holds each tenant's last seq and hash; appending updates
-- it in the same statement, and its row lock orders concurrent appends of one tenant.

create table audit_events (
  tenant_id uuid not null,
  seq bigint not null check (seq > 0),
  id uuid not null,
  occurred_at timestamptz not null,
  actor_kind text not null check (actor_kind in ('user', 'api_key', 'operator', 'system', 'anonymous')),
  actor_id text not null check (length(actor_id) between 1 and 200),
  action text not null check (action ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$' and length(action) <= 100),
  entity_id uuid,
  resource_type text check (length(resource_type) <= 100),
  resource_id text check (length(resource_id) <= 200),
  request_id text check (length(request_id) <= 200),
  source_address text check (length(source_address) <= 100),
  before_digest bytea check (octet_length(before_digest) = 32),
  after_digest bytea check (octet_length(after_digest) = 32),
  summary jsonb check (jsonb_typeof(summary) = 'object'),
  prev_hash bytea not null check (octet_length(prev_hash) = 32),
  hash bytea not null check (octet_length(hash) = 32),
  primary key (tenant_id, seq)
);
create unique index audit_events_tenant_id_key on audit_events (tenant_id, id);
create index audit_events_tenant_time on audit_events (tenant_id, occurred_at, seq);
create index audit_events_tenant_action on audit_events (tenant_id, action, seq);
create index audit_events_tenant_entity on audit_events (tenant_id, entity_id, seq) where entity_id is not null;
create index audit_events_tenant_actor on audit_events (tenant_id, actor_id, seq);

create table audit_chain_heads (
  tenant_id uuid not null,
  seq bigint not null check (seq > 0),
  prev_hash bytea not null check (octet_length(prev_hash) = 32),
  hash bytea not null check (octet_length(hash) = 32),
  primary key (tenant_id)
);

-- The one sanctioned removal: offboarding purges a tenant's whole log. The owner sets
-- app.audit_purge_tenant to that tenant's id inside its transaction; the runtime role holds
-- no DELETE privilege, so the setting gives it nothing.
create function audit_refuse_change() returns trigger
  language plpgsql as $$
begin
  if tg_op = 'DELETE' and tg_level = 'ROW'
     and old.tenant_id::text = coalesce(current_setting('app.audit_purge_tenant', true), '') then
    return old;
  end if;
  raise exception using errcode = 'CH009', message = 'AUDIT_APPEND_ONLY',
    detail = format('%s is append-only: %s is refused', tg_table_name, tg_op);
end
$$;

-- A head only moves forward by one link: the next seq, chained to the previous hash.
create function audit_head_advances() returns trigger
  language plpgsql as $$
begin
  if new.tenant_id <> old.tenant_id or new.seq <> old.seq + 1 or new.prev_hash <> old.hash then
    raise exception using errcode = 'CH009', message = 'AUDIT_APPEND_ONLY',
      detail = 'an audit chain head only advances by one link';
  end if;
  return new;
end
$$;

create trigger audit_events_append_only before update or delete on audit_events
  for each row execute function audit_refuse_change();
create trigger audit_events_no_truncate before truncate on audit_events
  for each statement execute function audit_refuse_change();
create trigger audit_chain_heads_no_delete before delete on audit_chain_heads
  for each row execute function audit_refuse_change();
create trigger audit_chain_heads_no_truncate before truncate on audit_chain_heads
  for each statement execute function audit_refuse_change();
create trigger audit_chain_heads_advance before update on audit_chain_heads
  for each row execute function audit_head_advances();

alter table audit_events enable row level security;
alter table audit_events force row level security;
create policy tenant_isolation on audit_events
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);

alter table audit_chain_heads enable row level security;
alter table audit_chain_heads force row level security;
create policy tenant_isolation on audit_chain_heads
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);

grant select, insert on audit_events to {{runtime_role}};
grant select, insert, update on audit_chain_heads to {{runtime_role}};

-- Control plane: named operators ------------------------------------------------------
-- Operator API keys are random 32-byte secrets, so a SHA-256 digest is a sufficient hash
-- (no password stretching needed); the prefix finds the row. Owner role only: the runtime
-- role has no grant. The bootstrap operator (COUNTINGHOUSE_OPERATOR_KEY) has no row.

create table operators (
  id uuid primary key,
  name text not null check (length(name) between 1 and 100),
  key_prefix text not null,
  key_digest bytea not null check (octet_length(key_digest) = 32),
  created_by text not null,
  created_at timestamptz not null default now(),
  revoked_at timestamptz
);
create unique index operators_name_key on operators (lower(name));
create unique index operators_key_prefix_key on operators (key_prefix);
