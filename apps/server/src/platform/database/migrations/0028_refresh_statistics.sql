-- Planner statistics that keep up with a bulk load.
--
-- Every tenant query's tenant condition compares tenant_id with a setting, a value the planner
-- cannot see, so it estimates a firm's rows from the table's statistics. Until autovacuum next
-- analyzes a table (its launcher visits each database once a minute by default, and an
-- operator may have turned it off), rows a bulk load added are unknown to the plan: after a
-- firm imported 20,000 client entities, its entity list (order by id, limit 101) was planned as
-- a bitmap scan of all the firm's rows and a sort, 15-27 ms a page, instead of an ordered index
-- scan that stops after 101 rows, 0.2 ms (auto_explain, the noisy-neighbour harness on the
-- machine's PostgreSQL 15). Bulk loads therefore call this as they go, with the rows they have
-- added since they last refreshed: it analyzes the table when those rows reach autovacuum's own
-- threshold (autovacuum_analyze_threshold + autovacuum_analyze_scale_factor × the rows the
-- statistics know of), doing now what autovacuum would do at its next pass, and nothing
-- otherwise. The caller counts its rows itself because the cumulative statistics
-- (pg_stat_get_mod_since_analyze) lag a busy backend's changes by up to a second or more.
--
-- Security definer, because ANALYZE needs the table's owner; it takes only the tables named
-- here, reads no tenant rows into its result, and skips a table another ANALYZE or VACUUM is
-- working on rather than wait for it. Returns whether it ran ANALYZE.
create function refresh_table_statistics(p_table text, p_rows_added bigint) returns boolean
  language plpgsql security definer set search_path = public, pg_temp as $$
declare
  relation regclass;
  known_rows real;
begin
  if p_table is null or p_table not in ('entities') then
    raise exception using errcode = '22023', message = format('no statistics refresh for table %s', p_table);
  end if;
  relation := p_table::regclass;
  select greatest(c.reltuples, 0) into known_rows from pg_class c where c.oid = relation;
  if p_rows_added is null
     or p_rows_added < current_setting('autovacuum_analyze_threshold')::integer
       + current_setting('autovacuum_analyze_scale_factor')::real * known_rows then
    return false;
  end if;
  execute format('analyze (skip_locked) %I', p_table);
  return true;
end
$$;

revoke all on function refresh_table_statistics(text, bigint) from public;
grant execute on function refresh_table_statistics(text, bigint) to {{runtime_role}};
