-- Posting in one round trip, and daily balance roll-ups.
--
-- ledger_post_entries checks what only the database knows (the entity is visible and active,
-- every account is the entity's and active, no entry falls in a closed month) and then writes
-- the entries, their lines, the monthly and the daily balance increments: three set-based
-- inserts and two upserts whatever the batch size. ledger_post_idempotent wraps it with the
-- Idempotency-Key protocol of platform/database/idempotency.ts (same advisory lock, same
-- table), so a single post is one statement between the scope's begin and commit.
--
-- The rules of 0004 stay where they were: the append-only triggers, the per-statement entry
-- and line checks (closed periods after the shared advisory lock, lines only in their entry's
-- transaction, accounts of the entity) and the deferred balance check at commit still run on
-- every row these functions write. Both functions run as the caller (no SECURITY DEFINER), so
-- row-level security applies to every statement inside them.
--
-- Refusals raise SQLSTATE CH005 with the stable error code as the message and a detail that
-- names the entry (`entries[i]`, or `entry` for a single one) and line.

-- Balances per day, beside the monthly rows: "as of" a mid-month date is the monthly rows
-- through the previous month plus at most 31 days of daily rows, never a slice of lines.
create table account_daily_balances (
  tenant_id uuid not null,
  entity_id uuid not null,
  account_id uuid not null,
  currency char(3) not null,
  balance_date date not null,
  entry_class text not null check (entry_class in ('unadjusted', 'adjustment', 'closing')),
  shard smallint not null check (shard between 0 and 63),
  debit_minor bigint not null default 0,
  credit_minor bigint not null default 0,
  primary key (tenant_id, entity_id, balance_date, account_id, currency, entry_class, shard),
  foreign key (tenant_id, entity_id, account_id) references accounts (tenant_id, entity_id, id)
);

alter table account_daily_balances enable row level security;
alter table account_daily_balances force row level security;
create policy tenant_isolation on account_daily_balances
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
create policy entity_scope on account_daily_balances as restrictive
  using (entity_visible(entity_id)) with check (entity_visible(entity_id));
grant select, insert on account_daily_balances to {{runtime_role}};
grant update (debit_minor, credit_minor) on account_daily_balances to {{runtime_role}};

-- Books posted before this migration get their daily rows (shard 0).
insert into account_daily_balances
  (tenant_id, entity_id, account_id, currency, balance_date, entry_class, shard, debit_minor, credit_minor)
select tenant_id, entity_id, account_id, currency, entry_date, entry_class, 0,
       coalesce(sum(amount_minor) filter (where side = 'debit'), 0),
       coalesce(sum(amount_minor) filter (where side = 'credit'), 0)
  from journal_lines
 group by tenant_id, entity_id, account_id, currency, entry_date, entry_class;

create function ledger_entry_label(entry_index bigint, entry_total integer) returns text
  language sql immutable as $$
    select case when entry_total = 1 then 'entry' else format('entries[%s]', entry_index - 1) end
  $$;

create function ledger_post_entries(
  p_entity uuid,
  p_user uuid,
  p_posted_at timestamptz,
  p_write boolean,
  -- Entries, position i of each array describing entry i (1-based).
  p_entry_ids uuid[],
  p_dates date[],
  p_kinds text[],
  p_classes text[],
  p_memos text[],
  p_reverses uuid[],
  p_allow_inactive boolean[],
  -- Lines, each naming its entry by position in the arrays above.
  p_line_entries integer[],
  p_line_numbers smallint[],
  p_accounts uuid[],
  p_sides text[],
  p_amounts bigint[],
  p_currencies text[],
  p_exponents smallint[],
  p_line_memos text[]
) returns void
  language plpgsql as $$
declare
  tenant uuid := nullif(current_setting('app.tenant_id', true), '')::uuid;
  entry_total integer := cardinality(p_entry_ids);
  entity_status text;
  refused record;
begin
  select status into entity_status from entities where id = p_entity;
  if not found then
    raise exception using errcode = 'CH005', message = 'ENTITY_NOT_FOUND';
  end if;
  if entity_status <> 'active' then
    raise exception using errcode = 'CH005', message = 'LEDGER_ENTITY_ARCHIVED';
  end if;

  select l.entry_index, l.line_no, l.account_id, a.id is null as unknown
    into refused
    from unnest(p_line_entries, p_line_numbers, p_accounts) as l(entry_index, line_no, account_id)
    left join accounts a on a.entity_id = p_entity and a.id = l.account_id
   where a.id is null or (not a.active and not p_allow_inactive[l.entry_index])
   order by l.entry_index, l.line_no
   limit 1;
  if found then
    raise exception using errcode = 'CH005',
      message = case when refused.unknown then 'LEDGER_ACCOUNT_UNKNOWN' else 'LEDGER_ACCOUNT_INACTIVE' end,
      detail = format('%s.lines[%s]: acc_%s', ledger_entry_label(refused.entry_index, entry_total),
                      refused.line_no - 1, replace(refused.account_id::text, '-', ''));
  end if;

  select e.entry_index, e.entry_date
    into refused
    from unnest(p_dates, p_kinds) with ordinality as e(entry_date, kind, entry_index)
    join periods p on p.entity_id = p_entity and p.period_month = date_trunc('month', e.entry_date)::date
   where p.status = 'closed' and e.kind <> 'closing'
   order by e.entry_index
   limit 1;
  if found then
    raise exception using errcode = 'CH005', message = 'LEDGER_PERIOD_CLOSED',
      detail = format('%s: the period of %s is closed.', ledger_entry_label(refused.entry_index, entry_total),
                      refused.entry_date);
  end if;

  if not p_write then
    return;
  end if;

  insert into journal_entries
    (tenant_id, entity_id, id, entry_date, kind, entry_class, memo, reverses_id, line_count, created_by, posted_at)
  select tenant, p_entity, e.id, e.entry_date, e.kind, e.entry_class, e.memo, e.reverses_id,
         coalesce(c.line_count, 0), p_user, p_posted_at
    from unnest(p_entry_ids, p_dates, p_kinds, p_classes, p_memos, p_reverses) with ordinality
           as e(id, entry_date, kind, entry_class, memo, reverses_id, entry_index)
    left join (select l.entry_index, count(*)::integer as line_count
                 from unnest(p_line_entries) as l(entry_index) group by l.entry_index) c
      on c.entry_index = e.entry_index;

  insert into journal_lines (tenant_id, entity_id, entry_id, line_no, account_id, entry_date, entry_class,
                             side, amount_minor, currency, currency_exponent, memo)
  select tenant, p_entity, p_entry_ids[l.entry_index], l.line_no, l.account_id, p_dates[l.entry_index],
         p_classes[l.entry_index], l.side, l.amount_minor, l.currency, l.exponent, l.memo
    from unnest(p_line_entries, p_line_numbers, p_accounts, p_sides, p_amounts, p_currencies, p_exponents,
                p_line_memos) as l(entry_index, line_no, account_id, side, amount_minor, currency, exponent, memo);

  -- One write-shard per account for this transaction, picked at random among its shards. Rows
  -- are locked in one global order (account, currency, month or day, class, shard), so two
  -- postings that share balance rows cannot deadlock.
  with deltas as materialized (
    select d.account_id, d.currency, d.balance_date, d.entry_class, s.shard, d.debit_minor, d.credit_minor
      from (select l.account_id, l.currency, p_dates[l.entry_index] as balance_date,
                   p_classes[l.entry_index] as entry_class,
                   coalesce(sum(l.amount_minor) filter (where l.side = 'debit'), 0)::bigint as debit_minor,
                   coalesce(sum(l.amount_minor) filter (where l.side = 'credit'), 0)::bigint as credit_minor
              from unnest(p_line_entries, p_accounts, p_sides, p_amounts, p_currencies)
                     as l(entry_index, account_id, side, amount_minor, currency)
             group by 1, 2, 3, 4) d
      join (select a.id, floor(random() * a.balance_shards)::smallint as shard
              from accounts a where a.entity_id = p_entity and a.id = any(p_accounts)) s on s.id = d.account_id
  ),
  monthly as (
    insert into account_balances as b
      (tenant_id, entity_id, account_id, currency, period_month, entry_class, shard, debit_minor, credit_minor)
    select tenant, p_entity, account_id, currency, date_trunc('month', balance_date)::date, entry_class, shard,
           sum(debit_minor)::bigint, sum(credit_minor)::bigint
      from deltas
     group by account_id, currency, date_trunc('month', balance_date)::date, entry_class, shard
     order by account_id, currency, date_trunc('month', balance_date)::date, entry_class, shard
    on conflict (tenant_id, entity_id, account_id, currency, period_month, entry_class, shard)
    do update set debit_minor = b.debit_minor + excluded.debit_minor,
                  credit_minor = b.credit_minor + excluded.credit_minor
    returning 1
  )
  insert into account_daily_balances as b
    (tenant_id, entity_id, account_id, currency, balance_date, entry_class, shard, debit_minor, credit_minor)
  select tenant, p_entity, account_id, currency, balance_date, entry_class, shard, debit_minor, credit_minor
    from deltas
   where (select count(*) from monthly) > 0
   order by balance_date, account_id, currency, entry_class, shard
  on conflict (tenant_id, entity_id, balance_date, account_id, currency, entry_class, shard)
  do update set debit_minor = b.debit_minor + excluded.debit_minor,
                credit_minor = b.credit_minor + excluded.credit_minor;
end
$$;

-- The Idempotency-Key protocol around a posting: the same transaction-level advisory lock as
-- runIdempotent, then either the stored response (same request) or a refusal (another
-- request under the key), else the posting and the stored response, all in one statement.
create function ledger_post_idempotent(
  p_key text,
  p_route text,
  p_request_hash text,
  p_response_status integer,
  p_response_body jsonb,
  p_entity uuid,
  p_user uuid,
  p_posted_at timestamptz,
  p_entry_ids uuid[],
  p_dates date[],
  p_kinds text[],
  p_classes text[],
  p_memos text[],
  p_reverses uuid[],
  p_allow_inactive boolean[],
  p_line_entries integer[],
  p_line_numbers smallint[],
  p_accounts uuid[],
  p_sides text[],
  p_amounts bigint[],
  p_currencies text[],
  p_exponents smallint[],
  p_line_memos text[],
  out replayed boolean,
  out response_status integer,
  out response_body jsonb
)
  language plpgsql as $$
declare
  tenant text := current_setting('app.tenant_id', true);
  previous record;
begin
  perform pg_advisory_xact_lock(hashtextextended(tenant || ':' || p_key, 0));
  select k.request_hash, k.response_status, k.response_body into previous
    from idempotency_keys k where k.key = p_key;
  if found then
    if previous.request_hash <> p_request_hash then
      raise exception using errcode = 'CH005', message = 'IDEMPOTENCY_KEY_REUSED';
    end if;
    replayed := true;
    response_status := previous.response_status;
    response_body := previous.response_body;
    return;
  end if;
  perform ledger_post_entries(p_entity, p_user, p_posted_at, true, p_entry_ids, p_dates, p_kinds, p_classes,
    p_memos, p_reverses, p_allow_inactive, p_line_entries, p_line_numbers, p_accounts, p_sides, p_amounts,
    p_currencies, p_exponents, p_line_memos);
  insert into idempotency_keys (tenant_id, key, route, request_hash, response_status, response_body)
  values (tenant::uuid, p_key, p_route, p_request_hash, p_response_status, p_response_body);
  replayed := false;
  response_status := p_response_status;
  response_body := p_response_body;
end
$$;

revoke all on function ledger_post_entries(uuid, uuid, timestamptz, boolean, uuid[], date[], text[], text[], text[],
  uuid[], boolean[], integer[], smallint[], uuid[], text[], bigint[], text[], smallint[], text[]) from public;
revoke all on function ledger_post_idempotent(text, text, text, integer, jsonb, uuid, uuid, timestamptz, uuid[],
  date[], text[], text[], text[], uuid[], boolean[], integer[], smallint[], uuid[], text[], bigint[], text[],
  smallint[], text[]) from public;
grant execute on function ledger_post_entries(uuid, uuid, timestamptz, boolean, uuid[], date[], text[], text[],
  text[], uuid[], boolean[], integer[], smallint[], uuid[], text[], bigint[], text[], smallint[], text[])
  to {{runtime_role}};
grant execute on function ledger_post_idempotent(text, text, text, integer, jsonb, uuid, uuid, timestamptz, uuid[],
  date[], text[], text[], text[], uuid[], boolean[], integer[], smallint[], uuid[], text[], bigint[], text[],
  smallint[], text[]) to {{runtime_role}};
