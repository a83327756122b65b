-- An entry holds no more lines than it declares (journal_lines_checked, last in 0019).
--
-- The commit-time balance check (journal_entry_balanced) is a deferred constraint trigger, so
-- raw SQL in the tenant scope could run it early with SET CONSTRAINTS ALL IMMEDIATE once an
-- entry's declared lines were in and balanced, then add a further line in the same
-- transaction: the check had already fired and did not fire again, and the entry committed
-- unbalanced. A line's number may now not exceed its entry's declared line count (a check
-- constraint already keeps it above 0); with the primary key (tenant, entry, line number)
-- an entry can then never hold more lines than it declares, and the check that counted
-- exactly that many lines, balanced, stays true whenever it ran. The posting functions number lines 1..n and declare n, so nothing they
-- write changes; the check reads the highest line number of the statement's new lines per
-- entry, beside the entry it already probes.

create or replace function journal_lines_checked() returns trigger
  language plpgsql as $$
declare
  foreign_entries bigint;
  late_lines bigint;
  misnumbered_entries bigint;
  unknown_accounts bigint;
begin
  select count(*) filter (where e.id is null or e.entity_id <> l.entity_id
                            or e.entry_date <> l.entry_date or e.entry_class <> l.entry_class),
         count(*) filter (where e.posted_xact <> pg_current_xact_id()),
         count(*) filter (where l.last_line > e.line_count)
    into foreign_entries, late_lines, misnumbered_entries
    from (select n.tenant_id, n.entity_id, n.entry_id, n.entry_date, n.entry_class, max(n.line_no) as last_line
            from new_lines n
           group by n.tenant_id, n.entity_id, n.entry_id, n.entry_date, n.entry_class) l
    left join lateral (
      select j.id, j.entity_id, j.entry_date, j.entry_class, j.posted_xact, j.line_count
        from journal_entries j
       where j.tenant_id = l.tenant_id and j.id = l.entry_id
      offset 0
    ) e on true;
  if foreign_entries > 0 or late_lines > 0 then
    raise exception using errcode = 'CH003', message = 'LEDGER_APPEND_ONLY',
      detail = 'lines can only be added, with their entry''s date and class, in the transaction that posts the entry';
  end if;
  if misnumbered_entries > 0 then
    raise exception using errcode = 'CH003', message = 'LEDGER_APPEND_ONLY',
      detail = 'an entry''s lines are numbered from 1 to the line count it declares; there is no room for another';
  end if;
  select count(*) filter (where a.id is null)
    into unknown_accounts
    from (select distinct n.tenant_id, n.entity_id, n.account_id from new_lines n) l
    left join lateral (
      select k.id
        from accounts k
       where k.tenant_id = l.tenant_id and k.id = l.account_id and k.entity_id = l.entity_id
      offset 0
    ) a on true;
  if unknown_accounts > 0 then
    -- The refusal counts lines, as it always has, not distinct accounts.
    select count(*)
      into unknown_accounts
      from new_lines n
     where not exists (select 1 from accounts k
                        where k.tenant_id = n.tenant_id and k.id = n.account_id and k.entity_id = n.entity_id);
    raise exception using errcode = 'CH004', message = 'LEDGER_ACCOUNT_UNKNOWN',
      detail = format('%s line(s) name an account that is not in the entry''s entity', unknown_accounts);
  end if;
  return null;
end
$$;
