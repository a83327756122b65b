-- The commit-time balance check of each new entry (journal_entry_balanced, 0013_ledger_fx.sql)
-- read the entry's lines by (tenant_id, entry_id). PL/pgSQL caches its plan per session; made
-- while journal_lines was small, it chose the (tenant_id, entity_id, entry_date) index on
-- tenant_id alone and filtered every line of the firm (auto_explain: 598 rows removed for a
-- 2-line entry), once per entry at every commit, so posting slowed as the journal grew.
-- A line always carries its entry's entity and date (journal_lines_checked enforces it), so
-- naming them too bounds the read to that day's lines of that entity whichever index the
-- plan uses, and the primary key still answers it exactly. The rules are unchanged.
create or replace function journal_entry_balanced() returns trigger
  language plpgsql as $$
declare
  actual_lines bigint;
  unbalanced text;
  base_net numeric;
begin
  select coalesce(sum(line_total), 0), string_agg(currency, ', ') filter (where net <> 0), sum(base)
    into actual_lines, unbalanced, base_net
    from (select currency, count(*) as line_total,
                 sum(case when side = 'debit' then amount_minor else -amount_minor end) as net,
                 sum(case when side = 'debit' then base_amount_minor else -base_amount_minor end) as base
            from journal_lines
           where tenant_id = new.tenant_id and entity_id = new.entity_id and entry_date = new.entry_date
             and entry_id = new.id
           group by currency) per_currency;
  if actual_lines <> new.line_count then
    raise exception using errcode = 'CH002', message = 'LEDGER_ENTRY_TOO_FEW_LINES',
      detail = format('entry %s declares %s lines but has %s', new.id, new.line_count, actual_lines);
  end if;
  if unbalanced is not null then
    raise exception using errcode = 'CH002', message = 'LEDGER_ENTRY_UNBALANCED',
      detail = format('entry %s does not balance in %s', new.id, unbalanced);
  end if;
  if base_net is not null and base_net <> 0 then
    raise exception using errcode = 'CH002', message = 'LEDGER_ENTRY_UNBALANCED',
      detail = format('entry %s does not balance in its base currency (off by %s minor units)', new.id, base_net);
  end if;
  return null;
end
$$;
