-- Plans of the posting function that PostgreSQL made again on every call.
--
-- PL/pgSQL keeps a plan per statement per session; for a statement with parameters it makes
-- a custom plan for each of the first five calls and then keeps a generic one, unless the
-- generic plan's estimated cost exceeds the custom plans' average, in which case it makes a
-- custom plan on every call for the life of the session. pg_stat_statements (track = all,
-- track_planning) under 32 concurrent single posts over 50 firms showed exactly one such
-- statement in ledger_post_entries, the base-amount check over the unnested lines: 1,953
-- plans in 1,928 calls, 0.78 ms of planning each, more than the statement's own execution.
-- The function's other statements had settled on generic plans after five calls already, so
-- forcing generic plans for the whole function changes that one statement only: it is then
-- planned once per session, like the others.
alter function ledger_post_entries(uuid, uuid, timestamptz, boolean, uuid[], date[], text[], text[], text[],
  uuid[], boolean[], integer[], smallint[], uuid[], text[], bigint[], text[], smallint[], text[], numeric[], bigint[],
  text[]) set plan_cache_mode = force_generic_plan;
