-- The per-statement check of new journal lines (0004_ledger.sql, journal_lines_checked) joined
-- the transition table to journal_entries and accounts as plain joins. PL/pgSQL caches that
-- plan for the session, and when it is made while the tables are small (a new firm, or before
-- autovacuum has analyzed them) the planner reads every entry of the tenant and filters the
-- join: each posting then cost in proportion to the firm's whole journal (seen with
-- auto_explain: a bitmap scan of all the tenant's journal_entries under a 2-line post).
-- Looking each line's entry and account up by primary key, in lateral subqueries the planner
-- may not flatten (OFFSET 0), keeps the check at a few index probes per line whatever the
-- journal's size. The rules checked are unchanged.
create or replace function journal_lines_checked() returns trigger
  language plpgsql as $$
declare
  foreign_entries bigint;
  late_lines bigint;
  unknown_accounts bigint;
begin
  select count(*) filter (where e.id is null or e.entity_id <> l.entity_id
                            or e.entry_date <> l.entry_date or e.entry_class <> l.entry_class),
         count(*) filter (where e.posted_xact <> pg_current_xact_id()),
         count(*) filter (where a.id is null)
    into foreign_entries, late_lines, unknown_accounts
    from new_lines l
    left join lateral (
      select j.id, j.entity_id, j.entry_date, j.entry_class, j.posted_xact
        from journal_entries j
       where j.tenant_id = l.tenant_id and j.id = l.entry_id
      offset 0
    ) e on true
    left join lateral (
      select k.id
        from accounts k
       where k.tenant_id = l.tenant_id and k.entity_id = l.entity_id and k.id = l.account_id
      offset 0
    ) a on true;
  if foreign_entries > 0 or late_lines > 0 then
    raise exception using errcode = 'CH003', message = 'LEDGER_APPEND_ONLY',
      detail = 'lines can only be added, with their entry''s date and class, in the transaction that posts the entry';
  end if;
  if unknown_accounts > 0 then
    raise exception using errcode = 'CH004', message = 'LEDGER_ACCOUNT_UNKNOWN',
      detail = format('%s line(s) name an account that is not in the entry''s entity', unknown_accounts);
  end if;
  return null;
end
$$;
