-- The accounting core: client entity fields, charts of accounts, the append-only double-entry
-- journal, balances maintained in the posting transaction, periods and their locks, sign-off
-- of adjusting entries and the close checklist.
--
-- Every table is owned by a client entity: tenant_id leads every key, entity_id follows, and
-- besides tenant_isolation each carries the RESTRICTIVE entity_scope policy (0002).
-- The database is the last wall for the ledger's rules, so each is enforced here as well as
-- in code: balance per currency (deferred, checked at commit), append-only entries and lines,
-- lines only in their entry's own transaction, no posting into a closed period, an entry
-- reversed at most once, and an approver who is not the preparer. Refusals raise SQLSTATE
-- class CH with the stable error code as the message, so the store can map them.

-- Client entity fields ----------------------------------------------------------------

alter table entities add column legal_name text;
-- AES-256-GCM sealed by the server's master key; only the last four digits are kept in clear.
alter table entities add column taxpayer_id_sealed text;
alter table entities add column taxpayer_id_last4 char(4) check (taxpayer_id_last4 ~ '^[0-9]{4}$');

-- Charts of accounts ------------------------------------------------------------------

create table accounts (
  tenant_id uuid not null,
  entity_id uuid not null,
  id uuid not null,
  number text not null check (number ~ '^[0-9A-Za-z][0-9A-Za-z.-]{0,19}$'),
  name text not null check (length(name) between 1 and 200),
  account_type text not null check (account_type in ('asset', 'liability', 'equity', 'revenue', 'expense')),
  normal_balance text not null check (normal_balance in ('debit', 'credit')),
  parent_id uuid,
  active boolean not null default true,
  system_role text check (system_role in ('retained_earnings', 'rounding')),
  tax_lines jsonb not null default '{}'::jsonb check (jsonb_typeof(tax_lines) = 'object'),
  balance_shards smallint not null default 1 check (balance_shards between 1 and 64),
  created_at timestamptz not null default now(),
  primary key (tenant_id, id),
  unique (tenant_id, entity_id, id),
  foreign key (tenant_id, entity_id) references entities (tenant_id, id),
  foreign key (tenant_id, entity_id, parent_id) references accounts (tenant_id, entity_id, id),
  check (parent_id is null or parent_id <> id)
);
create unique index accounts_entity_number_key on accounts (tenant_id, entity_id, number);
create unique index accounts_entity_role_key on accounts (tenant_id, entity_id, system_role)
  where system_role is not null;

-- Journal -----------------------------------------------------------------------------

create table journal_entries (
  tenant_id uuid not null,
  entity_id uuid not null,
  id uuid not null,
  entry_date date not null,
  kind text not null check (kind in ('standard', 'adjusting', 'reclassifying', 'closing', 'reversing')),
  -- The trial-balance column the entry lands in; a reversal takes its original's class.
  entry_class text not null check (entry_class in ('unadjusted', 'adjustment', 'closing')),
  memo text not null default '',
  reverses_id uuid,
  line_count integer not null check (line_count between 2 and 10000),
  created_by uuid not null,
  posted_at timestamptz not null default now(),
  posted_xact xid8 not null default pg_current_xact_id(),
  primary key (tenant_id, id),
  unique (tenant_id, entity_id, id),
  -- Entity and preparer are checked per statement by journal_entries_checked, not by foreign
  -- keys: every posting of an entity would otherwise KEY SHARE-lock the same entity and user
  -- rows, and concurrent lockers of one row pile up MultiXacts. Neither table grants DELETE.
  foreign key (tenant_id, entity_id, reverses_id) references journal_entries (tenant_id, entity_id, id),
  check ((kind = 'reversing') = (reverses_id is not null))
);
-- An entry is reversed at most once, even by two racing reversals.
create unique index journal_entries_reverses_key on journal_entries (tenant_id, reverses_id)
  where reverses_id is not null;
create index journal_entries_entity_date on journal_entries (tenant_id, entity_id, entry_date, id);

create table journal_lines (
  tenant_id uuid not null,
  entity_id uuid not null,
  entry_id uuid not null,
  line_no smallint not null check (line_no >= 1),
  account_id uuid not null,
  entry_date date not null,
  entry_class text not null,
  side text not null check (side in ('debit', 'credit')),
  amount_minor bigint not null check (amount_minor > 0),
  currency char(3) not null check (currency ~ '^[A-Z]{3}$'),
  currency_exponent smallint not null check (currency_exponent between 0 and 4),
  memo text,
  -- The line's entry (same entity, date and class, posted in this transaction) and its
  -- account (same entity) are checked once per statement by journal_lines_checked below,
  -- set-based, rather than by two row-by-row foreign keys: a thousand-entry batch is one
  -- join instead of four thousand index probes and tuple locks. Neither table grants DELETE.
  primary key (tenant_id, entry_id, line_no)
);
create index journal_lines_account_date
  on journal_lines (tenant_id, entity_id, account_id, currency, entry_date, entry_id, line_no);
create index journal_lines_entity_date on journal_lines (tenant_id, entity_id, entry_date);

-- Balances per entity, account, currency, month and trial-balance class, spread over
-- write-shards (accounts.balance_shards) so a hot account does not serialise its writers.
create table account_balances (
  tenant_id uuid not null,
  entity_id uuid not null,
  account_id uuid not null,
  currency char(3) not null,
  period_month date not null check (extract(day from period_month) = 1),
  entry_class text not null check (entry_class in ('unadjusted', 'adjustment', 'closing')),
  shard smallint not null check (shard between 0 and 63),
  debit_minor bigint not null default 0,
  credit_minor bigint not null default 0,
  primary key (tenant_id, entity_id, account_id, currency, period_month, entry_class, shard),
  foreign key (tenant_id, entity_id, account_id) references accounts (tenant_id, entity_id, id)
);

-- Periods and close -------------------------------------------------------------------

create table periods (
  tenant_id uuid not null,
  entity_id uuid not null,
  period_month date not null check (extract(day from period_month) = 1),
  fiscal_year integer not null,
  period_number smallint not null check (period_number between 1 and 12),
  status text not null default 'open' check (status in ('open', 'closed')),
  closed_by uuid,
  closed_at timestamptz,
  primary key (tenant_id, entity_id, period_month),
  foreign key (tenant_id, entity_id) references entities (tenant_id, id),
  foreign key (tenant_id, closed_by) references users (tenant_id, id)
);

-- Every close and reopen, with who and why: append-only like the journal.
create table period_events (
  tenant_id uuid not null,
  entity_id uuid not null,
  id uuid not null,
  period_month date not null,
  action text not null check (action in ('close', 'reopen', 'year_end_close')),
  reason text,
  actor uuid not null,
  occurred_at timestamptz not null default now(),
  primary key (tenant_id, id),
  foreign key (tenant_id, entity_id, period_month) references periods (tenant_id, entity_id, period_month),
  foreign key (tenant_id, actor) references users (tenant_id, id),
  check (action <> 'reopen' or length(trim(reason)) > 0)
);
create index period_events_period on period_events (tenant_id, entity_id, period_month, occurred_at);

create table close_tasks (
  tenant_id uuid not null,
  entity_id uuid not null,
  id uuid not null,
  period_month date not null,
  position smallint not null check (position >= 1),
  title text not null check (length(title) between 1 and 200),
  assignee uuid,
  due_on date,
  status text not null default 'open' check (status in ('open', 'done')),
  signed_off_by uuid,
  signed_off_at timestamptz,
  primary key (tenant_id, id),
  unique (tenant_id, entity_id, period_month, position),
  foreign key (tenant_id, entity_id) references entities (tenant_id, id),
  foreign key (tenant_id, assignee) references users (tenant_id, id),
  foreign key (tenant_id, signed_off_by) references users (tenant_id, id),
  check ((status = 'done') = (signed_off_by is not null))
);

-- Sign-off of adjusting entries -------------------------------------------------------

create table adjustments (
  tenant_id uuid not null,
  entity_id uuid not null,
  id uuid not null,
  status text not null check (status in ('draft', 'submitted', 'approved', 'posted')),
  entry_date date not null,
  kind text not null check (kind in ('adjusting', 'reclassifying')),
  memo text not null default '',
  lines jsonb not null check (jsonb_typeof(lines) = 'array'),
  documents jsonb not null default '[]'::jsonb check (jsonb_typeof(documents) = 'array'),
  prepared_by uuid not null,
  submitted_at timestamptz,
  approved_by uuid,
  approved_at timestamptz,
  posted_entry_id uuid,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (tenant_id, id),
  unique (tenant_id, entity_id, id),
  foreign key (tenant_id, entity_id) references entities (tenant_id, id),
  foreign key (tenant_id, prepared_by) references users (tenant_id, id),
  foreign key (tenant_id, approved_by) references users (tenant_id, id),
  foreign key (tenant_id, entity_id, posted_entry_id) references journal_entries (tenant_id, entity_id, id),
  -- Segregation of duties, held by the database too.
  check (approved_by is null or approved_by <> prepared_by),
  check ((status in ('approved', 'posted')) = (approved_by is not null)),
  check ((status = 'posted') = (posted_entry_id is not null))
);

create table adjustment_comments (
  tenant_id uuid not null,
  entity_id uuid not null,
  id uuid not null,
  adjustment_id uuid not null,
  author uuid not null,
  body text not null check (length(body) between 1 and 4000),
  created_at timestamptz not null default now(),
  primary key (tenant_id, id),
  foreign key (tenant_id, entity_id, adjustment_id) references adjustments (tenant_id, entity_id, id),
  foreign key (tenant_id, author) references users (tenant_id, id)
);
create index adjustment_comments_adjustment on adjustment_comments (tenant_id, adjustment_id, created_at);

-- Database-held ledger rules ----------------------------------------------------------

create function ledger_refuse_change() returns trigger
  language plpgsql as $$
begin
  raise exception using errcode = 'CH003', message = 'LEDGER_APPEND_ONLY',
    detail = format('%s is append-only: %s is refused; post a reversal instead', tg_table_name, tg_op);
end
$$;

create trigger journal_entries_append_only before update or delete on journal_entries
  for each row execute function ledger_refuse_change();
create trigger journal_entries_no_truncate before truncate on journal_entries
  for each statement execute function ledger_refuse_change();
create trigger journal_lines_append_only before update or delete on journal_lines
  for each row execute function ledger_refuse_change();
create trigger journal_lines_no_truncate before truncate on journal_lines
  for each statement execute function ledger_refuse_change();
create trigger period_events_append_only before update or delete on period_events
  for each row execute function ledger_refuse_change();

-- Each statement's new lines must belong to an entry of the same entity, date and class that
-- this very transaction posted (so a later transaction cannot add even a balanced pair to a
-- posted entry), and name an account of that entity.
create function journal_lines_checked() returns trigger
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
    left join journal_entries e on e.tenant_id = l.tenant_id and e.id = l.entry_id
    left join accounts a on a.tenant_id = l.tenant_id and a.entity_id = l.entity_id and a.id = l.account_id;
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
create trigger journal_lines_checked after insert on journal_lines
  referencing new table as new_lines
  for each statement execute function journal_lines_checked();

-- At commit, each new entry has its declared number of lines and nets to zero per currency.
create function journal_entry_balanced() returns trigger
  language plpgsql as $$
declare
  actual_lines bigint;
  unbalanced text;
begin
  select coalesce(sum(line_total), 0), string_agg(currency, ', ') filter (where net <> 0)
    into actual_lines, unbalanced
    from (select currency, count(*) as line_total,
                 sum(case when side = 'debit' then amount_minor else -amount_minor end) as net
            from journal_lines
           where tenant_id = new.tenant_id and entry_id = new.id
           group by currency) per_currency;
  if actual_lines <> new.line_count then
    raise exception using errcode = 'CH002', message = 'LEDGER_ENTRY_TOO_FEW_LINES',
      detail = format('entry %s declares %s lines but has %s', new.id, new.line_count, actual_lines);
  end if;
  if unbalanced is not null then
    raise exception using errcode = 'CH002', message = 'LEDGER_ENTRY_UNBALANCED',
      detail = format('entry %s does not balance in %s', new.id, unbalanced);
  end if;
  return null;
end
$$;
create constraint trigger journal_entries_balanced after insert on journal_entries
  deferrable initially deferred
  for each row execute function journal_entry_balanced();

-- Each statement's new entries name a known entity and user, and none is dated in a closed
-- period. The shared advisory lock
-- pairs with the exclusive one a close takes, so a close waits for in-flight postings and
-- later postings see it; the function is volatile, so the check after the lock reads a fresh
-- snapshot. Closing entries come only from year-end close and may land in a closed month.
create function journal_entries_checked() returns trigger
  language plpgsql as $$
declare
  closed_date date;
begin
  if exists (select 1 from new_entries n
               left join entities e on e.tenant_id = n.tenant_id and e.id = n.entity_id
               left join users u on u.tenant_id = n.tenant_id and u.id = n.created_by
              where e.id is null or u.id is null) then
    raise exception using errcode = '23503', message = 'journal entry names an unknown entity or user';
  end if;
  perform pg_advisory_xact_lock_shared(hashtextextended('ledger-periods:' || entity_id::text, 0))
     from (select distinct entity_id from new_entries) entities_posted;
  select n.entry_date into closed_date
    from new_entries n
    join periods p on p.tenant_id = n.tenant_id and p.entity_id = n.entity_id
                  and p.period_month = date_trunc('month', n.entry_date)::date
   where p.status = 'closed' and n.kind <> 'closing'
   limit 1;
  if closed_date is not null then
    raise exception using errcode = 'CH001', message = 'LEDGER_PERIOD_CLOSED',
      detail = format('the period of %s is closed', closed_date);
  end if;
  return null;
end
$$;
create trigger journal_entries_checked after insert on journal_entries
  referencing new table as new_entries
  for each statement execute function journal_entries_checked();

-- Row-level security ------------------------------------------------------------------

do $$
declare
  table_name text;
begin
  foreach table_name in array array['accounts', 'journal_entries', 'journal_lines', 'account_balances',
    'periods', 'period_events', 'close_tasks', 'adjustments', 'adjustment_comments'] loop
    execute format('alter table %I enable row level security', table_name);
    execute format('alter table %I force row level security', table_name);
    execute format($p$create policy tenant_isolation on %I
      using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
      with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)$p$, table_name);
    execute format('create policy entity_scope on %I as restrictive
      using (entity_visible(entity_id)) with check (entity_visible(entity_id))', table_name);
  end loop;
end
$$;

grant select, insert on accounts to {{runtime_role}};
grant update (name, active, parent_id, tax_lines, balance_shards) on accounts to {{runtime_role}};
grant select, insert on journal_entries, journal_lines, period_events, adjustment_comments to {{runtime_role}};
grant select, insert on account_balances to {{runtime_role}};
grant update (debit_minor, credit_minor) on account_balances to {{runtime_role}};
grant select, insert on periods to {{runtime_role}};
grant update (status, closed_by, closed_at) on periods to {{runtime_role}};
grant select, insert, update on close_tasks, adjustments to {{runtime_role}};
