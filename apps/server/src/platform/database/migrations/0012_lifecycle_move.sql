-- Tenant data lifecycle: exports, offboarding (legal hold, retention-scheduled purge) and live
-- tier changes that move a tenant's rows between placements (docs/offboarding.md,
-- docs/tier-changes.md).
--
-- CONTROL-PLANE tables (tenant_exports, tenant_tier_changes and the new registry columns) are
-- operator data like `tenants`: the owner role reads and writes them, the runtime role gets
-- nothing. Like the metering tables they name the firm in a column called `tenant`, not
-- `tenant_id`, because no tenant scope ever reads them.
--
-- MOVE tables (tenant_moves_active, tenant_move_changes) exist in every database, since every
-- placement runs the same migrations: while a tenant moves out of a database, statement-level
-- triggers installed by the mover on each of its tenant tables call tenant_move_capture(),
-- which records the primary keys of the moving tenant's changed rows (the catch-up reads them)
-- and makes the tenant's writers wait for the freeze, or refuses them once the tenant has moved.
-- The capture function is SECURITY DEFINER (owner), so the runtime role needs no privilege on
-- either table and cannot read or forge them.

-- Registry: legal hold and offboarding --------------------------------------------------

alter table tenants
  add column legal_hold_reason text,
  add column legal_hold_set_at timestamptz,
  add column offboarded_at timestamptz,
  add column purge_after timestamptz,
  add column purged_at timestamptz,
  add constraint tenants_legal_hold_pair check ((legal_hold_reason is null) = (legal_hold_set_at is null));
create index tenants_purge_due on tenants (purge_after) where purge_after is not null and purged_at is null;

-- Exports ------------------------------------------------------------------------------

create table tenant_exports (
  id uuid primary key,
  tenant uuid not null references tenants (id),
  status text not null check (status in ('queued', 'running', 'succeeded', 'failed')),
  job_id uuid,
  -- Relative to the server home; the archive itself is a file, not a row.
  file_name text,
  size_bytes bigint check (size_bytes >= 0),
  sha256 text check (sha256 ~ '^[0-9a-f]{64}$'),
  manifest jsonb,
  error text,
  created_at timestamptz not null default now(),
  finished_at timestamptz,
  check ((status = 'succeeded') = (file_name is not null and sha256 is not null and manifest is not null))
);
create index tenant_exports_tenant on tenant_exports (tenant, created_at desc);

-- Tier changes -------------------------------------------------------------------------

create table tenant_tier_changes (
  id uuid primary key,
  tenant uuid not null references tenants (id),
  from_tier text not null,
  to_tier text not null,
  source_placement jsonb not null,
  target_placement jsonb,
  status text not null check (status in ('queued', 'running', 'succeeded', 'failed')),
  phase text not null,
  rows_total bigint not null default 0 check (rows_total >= 0),
  rows_copied bigint not null default 0 check (rows_copied >= 0),
  job_id uuid,
  result jsonb,
  error text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  finished_at timestamptz
);
-- One move per tenant at a time, held by the database even for two racing requests.
create unique index tenant_tier_changes_one_active on tenant_tier_changes (tenant)
  where status in ('queued', 'running');
create index tenant_tier_changes_tenant on tenant_tier_changes (tenant, created_at desc);

-- Change capture and write freeze on the source of a move ----------------------------------

create table tenant_moves_active (
  tenant uuid primary key,
  change_id uuid not null,
  -- Set in the transaction that follows the registry flip: from then on the tenant's writers
  -- on this database are refused (503 TENANT_MOVING) and retry against the new placement.
  moved_out boolean not null default false,
  started_at timestamptz not null default now()
);

create table tenant_move_changes (
  seq bigint generated always as identity primary key,
  tenant uuid not null,
  table_name text not null,
  row_key jsonb not null
);
create index tenant_move_changes_tenant on tenant_move_changes (tenant, seq);

-- The primary-key columns of a row, as jsonb (the trigger's arguments name them).
create function tenant_move_row_key(row_value jsonb, key_columns text[]) returns jsonb
  language sql immutable as $$
  select jsonb_object_agg(key, value) from jsonb_each(row_value) where key = any(key_columns)
$$;

-- A writer of a moving tenant takes the move's advisory lock shared, so the mover's exclusive
-- lock (the freeze) waits for writers in flight and holds new ones back. A writer that waits
-- longer than 3 s, or arrives after the tenant moved out, is refused with SQLSTATE CH900, which
-- the tenant scope maps to 503 TENANT_MOVING with Retry-After: nothing it wrote is kept.
create function tenant_move_admit(moving_tenant uuid) returns void
  language plpgsql security definer set search_path = public, pg_temp as $$
declare
  previous_timeout text := current_setting('lock_timeout');
begin
  perform set_config('lock_timeout', '3s', true);
  begin
    perform pg_advisory_xact_lock_shared(hashtextextended('tenant-move:' || moving_tenant::text, 0));
  exception when lock_not_available then
    raise exception using errcode = 'CH900', message = 'TENANT_MOVING',
      detail = 'the tenant''s data is being moved; retry shortly';
  end;
  perform set_config('lock_timeout', previous_timeout, true);
  -- A fresh snapshot (volatile function, read committed): sees a move that finished while we waited.
  if exists (select 1 from tenant_moves_active where tenant = moving_tenant and moved_out) then
    raise exception using errcode = 'CH900', message = 'TENANT_MOVING',
      detail = 'the tenant''s data has moved; retry';
  end if;
end
$$;

-- Installed by the mover as three statement-level triggers per table (insert, update, delete),
-- each with `changed_rows` (new rows; old rows for delete) and, for update, `previous_rows`.
-- TG_ARGV holds the table's primary-key columns. With no move on this database it costs one
-- probe of an empty table per statement.
create function tenant_move_capture() returns trigger
  language plpgsql security definer set search_path = public, pg_temp as $$
declare
  moving_tenant uuid;
begin
  if not exists (select 1 from tenant_moves_active) then
    return null;
  end if;
  for moving_tenant in
    select m.tenant from tenant_moves_active m where m.tenant in (select r.tenant_id from changed_rows r)
  loop
    perform tenant_move_admit(moving_tenant);
  end loop;
  insert into tenant_move_changes (tenant, table_name, row_key)
    select r.tenant_id, tg_table_name, tenant_move_row_key(to_jsonb(r), tg_argv)
      from changed_rows r join tenant_moves_active m on m.tenant = r.tenant_id;
  if tg_op = 'UPDATE' then
    insert into tenant_move_changes (tenant, table_name, row_key)
      select r.tenant_id, tg_table_name, tenant_move_row_key(to_jsonb(r), tg_argv)
        from previous_rows r join tenant_moves_active m on m.tenant = r.tenant_id;
  end if;
  return null;
end
$$;
revoke all on function tenant_move_admit(uuid) from public;
