-- Audit chain lanes (docs/decisions/0009-audit-hash-chain.md, "Lanes").
--
-- One chain per tenant ordered every audited write of a firm behind one row lock, held from
-- the append until the writer's commit (its WAL flush included): a firm's writes could not
-- commit faster than one per flush, and under load two dozen writers queued on that row.
-- Each tenant now keeps up to 16 chains ("lanes"), each a hash chain exactly as before. An
-- append takes the first lane no other transaction holds (SKIP LOCKED), so concurrent
-- writers of one firm link into different lanes and commit together; a lone writer always
-- finds lane 0. The verifier walks every lane. Existing events and heads become lane 0,
-- unchanged, so their hashes still verify.
--
-- Events are listed in time order (occurred_at, id) rather than by seq, which is now a
-- position within a lane; the filter indexes change to match.

alter table audit_chain_heads
  add column lane smallint not null default 0 check (lane between 0 and 63),
  drop constraint audit_chain_heads_pkey,
  add primary key (tenant_id, lane);

alter table audit_events
  add column lane smallint not null default 0 check (lane between 0 and 63),
  drop constraint audit_events_pkey,
  add primary key (tenant_id, lane, seq);

drop index audit_events_tenant_time;
drop index audit_events_tenant_action;
drop index audit_events_tenant_entity;
drop index audit_events_tenant_actor;
create index audit_events_tenant_time on audit_events (tenant_id, occurred_at, id);
create index audit_events_tenant_action on audit_events (tenant_id, action, occurred_at, id);
create index audit_events_tenant_entity on audit_events (tenant_id, entity_id, occurred_at, id)
  where entity_id is not null;
create index audit_events_tenant_actor on audit_events (tenant_id, actor_id, occurred_at, id);

-- A head only moves forward by one link, within its own lane.
create or replace function audit_head_advances() returns trigger
  language plpgsql as $$
begin
  if new.tenant_id <> old.tenant_id or new.lane <> old.lane or new.seq <> old.seq + 1
     or new.prev_hash <> old.hash then
    raise exception using errcode = 'CH009', message = 'AUDIT_APPEND_ONLY',
      detail = 'an audit chain head only advances by one link';
  end if;
  return new;
end
$$;
