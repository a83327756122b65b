-- Appending several events to a lane the transaction already holds, in one round trip
-- (audit/audit.store.ts appendToLane; docs/decisions/0009-audit-hash-chain.md, "Lanes").
-- A group of single postings records one event per post (ledger/journal/posting-groups.ts);
-- one statement per event made the group's round trips grow with its size. The function
-- advances the lane's head one link per event, exactly as the one-event statement did (the
-- audit_chain_heads_advance trigger still checks every step), and links each event to the
-- head it advanced. Runs as the caller, so row-level security applies to both tables.
create function audit_append_to_lane(
  p_tenant uuid,
  p_lane smallint,
  p_contents bytea[],
  p_ids uuid[],
  p_occurred_at timestamptz[],
  p_actor_kinds text[],
  p_actor_ids text[],
  p_actions text[],
  p_entity_ids uuid[],
  p_resource_types text[],
  p_resource_ids text[],
  p_request_ids text[],
  p_source_addresses text[],
  p_before_digests bytea[],
  p_after_digests bytea[],
  p_summaries jsonb[]
) returns table (linked_lane smallint, linked_seq bigint)
  language plpgsql as $$
declare
  event_index integer;
begin
  for event_index in 1 .. coalesce(cardinality(p_ids), 0) loop
    return query
      with head as (
        update audit_chain_heads h
           set seq = h.seq + 1, prev_hash = h.hash, hash = sha256(h.hash || p_contents[event_index])
         where h.tenant_id = p_tenant and h.lane = p_lane
        returning h.lane, h.seq, h.prev_hash, h.hash
      )
      insert into audit_events (tenant_id, seq, id, occurred_at, actor_kind, actor_id, action, entity_id,
                                resource_type, resource_id, request_id, source_address, before_digest,
                                after_digest, summary, prev_hash, hash, lane)
      select p_tenant, head.seq, p_ids[event_index], p_occurred_at[event_index], p_actor_kinds[event_index],
             p_actor_ids[event_index], p_actions[event_index], p_entity_ids[event_index],
             p_resource_types[event_index], p_resource_ids[event_index], p_request_ids[event_index],
             p_source_addresses[event_index], p_before_digests[event_index], p_after_digests[event_index],
             p_summaries[event_index], head.prev_hash, head.hash, head.lane
        from head
      returning audit_events.lane, audit_events.seq;
    if not found then
      raise exception 'audit lane % held by this transaction has no head', p_lane;
    end if;
  end loop;
end
$$;

revoke all on function audit_append_to_lane(uuid, smallint, bytea[], uuid[], timestamptz[], text[], text[], text[],
  uuid[], text[], text[], text[], text[], bytea[], bytea[], jsonb[]) from public;
grant execute on function audit_append_to_lane(uuid, smallint, bytea[], uuid[], timestamptz[], text[], text[], text[],
  uuid[], text[], text[], text[], text[], bytea[], bytea[], jsonb[]) to {{runtime_role}};
