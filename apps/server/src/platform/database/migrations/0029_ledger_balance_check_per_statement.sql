-- The commit-time balance check, once per posting statement instead of once per entry.
--
-- journal_entry_balanced (last in 0017) was a deferred constraint trigger on each new entry:
-- at commit PostgreSQL queued and ran it a thousand times for a batch of a thousand entries,
-- each call a PL/pgSQL invocation with one query. Timed on one worker posting 1,000-entry
-- batches of 2-line entries (embedded PostgreSQL), the commit took 65 ms of a batch's 243 ms,
-- the posting function the rest. The rules are unchanged; the same check now runs set-based:
--
--   - every statement that inserts entries queues one row here (journal_entries_queue_check,
--     a statement trigger: it cannot be skipped by raw SQL any more than the row trigger could)
--     listing its entries and the line count each declares;
--   - that row's deferred constraint trigger checks all of them with one query at commit (or
--     when SET CONSTRAINTS … IMMEDIATE fires it early) and removes the row.
--
-- The queue is the owner's: the runtime role has no privilege on it, so the tenant scope can
-- neither add to it nor remove a pending check; both triggers are security definer for that
-- reason alone. A check fired early stays true, as before: an entry cannot gain a line beyond
-- the count it declares (0022), lines are never updated or deleted, and entries inserted later
-- queue checks of their own. Reading the lines as the owner changes nothing either: the check
-- names tenant and entry, and a line it cannot see (a scope changed before commit, under
-- forced row security) makes the count fall short, so the entry is refused, never passed.
--
-- Unlogged, because a queued row lives only inside its transaction: it is written and removed
-- before commit, and a crash aborts the transactions that held one. No column names a tenant
-- as tenant tables do (tenant-data/tenant-tables.ts), so moves and exports pass it by.

create unlogged table ledger_balance_checks (
  id bigint generated always as identity primary key,
  entries_tenant uuid not null,
  entry_ids uuid[] not null,
  entity_ids uuid[] not null,
  entry_dates date[] not null,
  line_counts integer[] not null
);
revoke all on ledger_balance_checks from public;

create function journal_entries_queue_check() returns trigger
  language plpgsql security definer set search_path = public, pg_temp as $$
begin
  -- The aggregates read the rows in one order, the order they were inserted in.
  insert into ledger_balance_checks (entries_tenant, entry_ids, entity_ids, entry_dates, line_counts)
  select n.tenant_id, array_agg(n.id), array_agg(n.entity_id), array_agg(n.entry_date), array_agg(n.line_count)
    from new_entries n
   group by n.tenant_id;
  return null;
end
$$;
create trigger journal_entries_queue_check after insert on journal_entries
  referencing new table as new_entries
  for each statement execute function journal_entries_queue_check();

-- Each queued entry has its declared number of lines, nets to zero per currency and, where its
-- lines carry base amounts, nets to zero in the base currency. The first entry refused (in the
-- queue's order) is named, with the refusals and details of the per-entry check. The lines are
-- read by tenant, entity, date and entry, as the per-entry check read them (0017, 0024), so
-- whichever index a plan made on small statistics picks, it reads that entry's lines only.
create function ledger_entries_balanced() returns trigger
  language plpgsql security definer set search_path = public, pg_temp as $$
declare
  refused record;
begin
  select q.entry_id, q.line_count, coalesce(t.actual_lines, 0) as actual_lines, t.unbalanced, t.base_net
    into refused
    from unnest(new.entry_ids, new.entity_ids, new.entry_dates, new.line_counts) with ordinality
           as q(entry_id, entity_id, entry_date, line_count, position)
    left join lateral (
      select sum(c.line_total) as actual_lines, string_agg(c.currency, ', ') filter (where c.net <> 0) as unbalanced,
             sum(c.base) as base_net
        from (select l.currency, count(*) as line_total,
                     sum(case when l.side = 'debit' then l.amount_minor else -l.amount_minor end) as net,
                     sum(case when l.side = 'debit' then l.base_amount_minor else -l.base_amount_minor end) as base
                from journal_lines l
               where l.tenant_id = new.entries_tenant and l.entity_id = q.entity_id
                 and l.entry_date = q.entry_date and l.entry_id = q.entry_id
               group by l.currency) c
    ) t on true
   where coalesce(t.actual_lines, 0) <> q.line_count or t.unbalanced is not null or t.base_net <> 0
   order by q.position
   limit 1;
  if found then
    if refused.actual_lines <> refused.line_count then
      raise exception using errcode = 'CH002', message = 'LEDGER_ENTRY_TOO_FEW_LINES',
        detail = format('entry %s declares %s lines but has %s', refused.entry_id, refused.line_count,
                        refused.actual_lines);
    end if;
    if refused.unbalanced is not null then
      raise exception using errcode = 'CH002', message = 'LEDGER_ENTRY_UNBALANCED',
        detail = format('entry %s does not balance in %s', refused.entry_id, refused.unbalanced);
    end if;
    raise exception using errcode = 'CH002', message = 'LEDGER_ENTRY_UNBALANCED',
      detail = format('entry %s does not balance in its base currency (off by %s minor units)', refused.entry_id,
                      refused.base_net);
  end if;
  delete from ledger_balance_checks where id = new.id;
  return null;
end
$$;
create constraint trigger ledger_balance_checks_run after insert on ledger_balance_checks
  deferrable initially deferred
  for each row execute function ledger_entries_balanced();

drop trigger journal_entries_balanced on journal_entries;
drop function journal_entry_balanced();
