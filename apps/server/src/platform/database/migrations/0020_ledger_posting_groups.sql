-- Group commit of single postings (ledger/journal/posting-groups.ts): concurrent single posts
-- by one user to one entity share one transaction. Each post keeps its own Idempotency-Key, so
-- the group takes every key's lock first, the same transaction-level advisory lock
-- runIdempotent and ledger_post_idempotent take for one key, and then reads the responses
-- stored under them. The locks are taken in key order, so two groups that share keys cannot
-- deadlock, and the read is a statement of its own after them, so it sees every response
-- committed before the locks were granted (READ COMMITTED takes a snapshot per statement).
-- Runs as the caller: row-level security applies to the read.
create function ledger_lock_idempotency_keys(p_keys text[])
  returns table (stored_key text, request_hash text, response_status integer, response_body jsonb)
  language plpgsql as $$
declare
  tenant text := current_setting('app.tenant_id', true);
  each_key text;
begin
  for each_key in select distinct k from unnest(p_keys) as k order by k loop
    perform pg_advisory_xact_lock(hashtextextended(tenant || ':' || each_key, 0));
  end loop;
  return query
    select i.key, i.request_hash, i.response_status, i.response_body
      from idempotency_keys i
     where i.key = any(p_keys);
end
$$;

revoke all on function ledger_lock_idempotency_keys(text[]) from public;
grant execute on function ledger_lock_idempotency_keys(text[]) to {{runtime_role}};
