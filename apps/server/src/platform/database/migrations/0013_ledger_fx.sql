-- Several currencies: exchange rates per entity and date, a base-currency amount on every
-- line, and an explicit rounding line so each entry balances in the base currency to the
-- minor unit.
--
-- A line in the entity's base currency carries rate 1 and its own amount as base amount. A
-- line in another currency carries the rate used (base units per unit, given on the line or
-- taken from exchange_rates on or before the entry date) and base = round(amount x rate x
-- 10^(base exponent - line exponent)), half away from zero, as PostgreSQL's round(numeric)
-- does. The base amounts of an entry then differ by at most half a minor unit per foreign
-- line; that difference is booked as a line of role fx_rounding on the entity's account with
-- the `rounding` system role (7900 in the US template), amount 0 in the base currency and the
-- difference as its base amount. Closing entries carry base amounts taken from balances.
--
-- The deferred balance check at commit now also requires every entry to net to zero in base
-- amounts; lines posted before this migration in a foreign currency have no base amount and
-- are left as they were (the NOT VALID check holds for every new line).

create function ledger_currency_exponent(currency text) returns smallint
  language sql immutable parallel safe as $$
    select exponent::smallint from (values
    ('AED', 2), ('ARS', 2), ('AUD', 2), ('BGN', 2), ('BHD', 3), ('BRL', 2), ('CAD', 2), ('CHF', 2),
    ('CLP', 0), ('CNY', 2), ('COP', 2), ('CZK', 2), ('DKK', 2), ('EGP', 2), ('EUR', 2), ('GBP', 2),
    ('HKD', 2), ('HUF', 2), ('IDR', 2), ('ILS', 2), ('INR', 2), ('ISK', 0), ('JOD', 3), ('JPY', 0),
    ('KRW', 0), ('KWD', 3), ('MXN', 2), ('MYR', 2), ('NOK', 2), ('NZD', 2), ('OMR', 3), ('PEN', 2),
    ('PHP', 2), ('PKR', 2), ('PLN', 2), ('QAR', 2), ('RON', 2), ('SAR', 2), ('SEK', 2), ('SGD', 2),
    ('THB', 2), ('TND', 3), ('TRY', 2), ('TWD', 2), ('UAH', 2), ('USD', 2), ('UYU', 2), ('VND', 0),
    ('ZAR', 2), ('CLF', 4), ('UYW', 4)
    ) as known(code, exponent) where code = currency
  $$;
grant execute on function ledger_currency_exponent(text) to {{runtime_role}};

create table exchange_rates (
  tenant_id uuid not null,
  entity_id uuid not null,
  currency char(3) not null check (currency ~ '^[A-Z]{3}$'),
  rate_date date not null,
  -- Base-currency units per one unit of `currency`, exact decimal.
  rate numeric(30, 12) not null check (rate > 0),
  source text not null default 'manual' check (source in ('manual', 'import')),
  recorded_by uuid not null,
  recorded_at timestamptz not null default now(),
  primary key (tenant_id, entity_id, currency, rate_date),
  foreign key (tenant_id, entity_id) references entities (tenant_id, id),
  foreign key (tenant_id, recorded_by) references users (tenant_id, id)
);
alter table exchange_rates enable row level security;
alter table exchange_rates force row level security;
create policy tenant_isolation on exchange_rates
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
create policy entity_scope on exchange_rates as restrictive
  using (entity_visible(entity_id)) with check (entity_visible(entity_id));
grant select, insert on exchange_rates to {{runtime_role}};
grant update (rate, source, recorded_by, recorded_at) on exchange_rates to {{runtime_role}};

alter table journal_lines add column exchange_rate numeric(30, 12) check (exchange_rate > 0);
alter table journal_lines add column base_amount_minor bigint;
alter table journal_lines add column line_role text not null default 'regular'
  check (line_role in ('regular', 'fx_rounding'));
alter table journal_lines drop constraint journal_lines_amount_minor_check;
alter table journal_lines add constraint journal_lines_amount_minor_check
  check (amount_minor > 0 or (line_role = 'fx_rounding' and amount_minor = 0));
alter table journal_lines add constraint journal_lines_rounding_check
  check (line_role <> 'fx_rounding' or base_amount_minor > 0);
alter table journal_lines add constraint journal_lines_base_present check (base_amount_minor is not null) not valid;

-- Lines already posted in their entity's base currency get rate 1 and their amount as base.
alter table journal_lines disable trigger journal_lines_append_only;
update journal_lines l set exchange_rate = 1, base_amount_minor = l.amount_minor
  from entities e where e.tenant_id = l.tenant_id and e.id = l.entity_id and l.currency = e.base_currency;
alter table journal_lines enable trigger journal_lines_append_only;

alter table account_balances add column base_debit_minor bigint not null default 0;
alter table account_balances add column base_credit_minor bigint not null default 0;
alter table account_daily_balances add column base_debit_minor bigint not null default 0;
alter table account_daily_balances add column base_credit_minor bigint not null default 0;
update account_balances b set base_debit_minor = b.debit_minor, base_credit_minor = b.credit_minor
  from entities e where e.tenant_id = b.tenant_id and e.id = b.entity_id and b.currency = e.base_currency;
update account_daily_balances b set base_debit_minor = b.debit_minor, base_credit_minor = b.credit_minor
  from entities e where e.tenant_id = b.tenant_id and e.id = b.entity_id and b.currency = e.base_currency;
grant update (base_debit_minor, base_credit_minor) on account_balances, account_daily_balances to {{runtime_role}};

-- At commit, each new entry has its declared number of lines, nets to zero per currency and,
-- where its lines carry base amounts, nets to zero in the base currency.
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
  if base_net is not null and base_net <> 0 then
    raise exception using errcode = 'CH002', message = 'LEDGER_ENTRY_UNBALANCED',
      detail = format('entry %s does not balance in its base currency (off by %s minor units)', new.id, base_net);
  end if;
  return null;
end
$$;

drop function ledger_post_idempotent(text, text, text, integer, jsonb, uuid, uuid, timestamptz, uuid[],
  date[], text[], text[], text[], uuid[], boolean[], integer[], smallint[], uuid[], text[], bigint[], text[],
  smallint[], text[]);
drop function ledger_post_entries(uuid, uuid, timestamptz, boolean, uuid[], date[], text[], text[], text[],
  uuid[], boolean[], integer[], smallint[], uuid[], text[], bigint[], text[], smallint[], text[]);

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
  p_line_memos text[],
  p_rates numeric[],
  p_base_amounts bigint[],
  p_line_roles text[]
) returns void
  language plpgsql as $$
declare
  tenant uuid := nullif(current_setting('app.tenant_id', true), '')::uuid;
  entry_total integer := cardinality(p_entry_ids);
  entity_status text;
  entity_base text;
  refused record;
begin
  select e.status, e.base_currency into entity_status, entity_base from entities e where e.id = p_entity;
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

  -- Base amounts follow from the rate (closing entries carry theirs from balances), and a
  -- rounding line is a zero-amount base-currency line on the rounding account.
  select l.entry_index, l.line_no
    into refused
    from unnest(p_line_entries, p_line_numbers, p_accounts, p_currencies, p_exponents, p_amounts, p_rates,
                p_base_amounts, p_line_roles)
           as l(entry_index, line_no, account_id, currency, exponent, amount_minor, rate, base_minor, line_role)
    left join accounts a on a.entity_id = p_entity and a.id = l.account_id
   where l.base_minor is null
      or (l.line_role = 'fx_rounding'
          and (l.currency <> entity_base or l.amount_minor <> 0 or a.system_role is distinct from 'rounding'))
      or (l.line_role = 'regular' and p_kinds[l.entry_index] <> 'closing'
          and (l.rate is null
               or (l.currency = entity_base and (l.rate <> 1 or l.base_minor <> l.amount_minor))
               or (l.currency <> entity_base
                   and l.base_minor <> round(l.amount_minor * l.rate
                                             * power(10::numeric, ledger_currency_exponent(entity_base) - l.exponent)))))
   order by l.entry_index, l.line_no
   limit 1;
  if found then
    raise exception using errcode = 'CH005', message = 'LEDGER_BASE_AMOUNT_INVALID',
      detail = format('%s.lines[%s]', ledger_entry_label(refused.entry_index, entry_total), refused.line_no - 1);
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
                             side, amount_minor, currency, currency_exponent, memo, exchange_rate,
                             base_amount_minor, line_role)
  select tenant, p_entity, p_entry_ids[l.entry_index], l.line_no, l.account_id, p_dates[l.entry_index],
         p_classes[l.entry_index], l.side, l.amount_minor, l.currency, l.exponent, l.memo, l.rate, l.base_minor,
         l.line_role
    from unnest(p_line_entries, p_line_numbers, p_accounts, p_sides, p_amounts, p_currencies, p_exponents,
                p_line_memos, p_rates, p_base_amounts, p_line_roles)
           as l(entry_index, line_no, account_id, side, amount_minor, currency, exponent, memo, rate, base_minor,
                line_role);

  -- One write-shard per account for this transaction, picked at random among its shards. Rows
  -- are locked in one global order (account, currency, month or day, class, shard), so two
  -- postings that share balance rows cannot deadlock.
  with deltas as materialized (
    select d.account_id, d.currency, d.balance_date, d.entry_class, s.shard, d.debit_minor, d.credit_minor,
           d.base_debit_minor, d.base_credit_minor
      from (select l.account_id, l.currency, p_dates[l.entry_index] as balance_date,
                   p_classes[l.entry_index] as entry_class,
                   coalesce(sum(l.amount_minor) filter (where l.side = 'debit'), 0)::bigint as debit_minor,
                   coalesce(sum(l.amount_minor) filter (where l.side = 'credit'), 0)::bigint as credit_minor,
                   coalesce(sum(l.base_minor) filter (where l.side = 'debit'), 0)::bigint as base_debit_minor,
                   coalesce(sum(l.base_minor) filter (where l.side = 'credit'), 0)::bigint as base_credit_minor
              from unnest(p_line_entries, p_accounts, p_sides, p_amounts, p_currencies, p_base_amounts)
                     as l(entry_index, account_id, side, amount_minor, currency, base_minor)
             group by 1, 2, 3, 4) d
      join (select a.id, floor(random() * a.balance_shards)::smallint as shard
              from accounts a where a.entity_id = p_entity and a.id = any(p_accounts)) s on s.id = d.account_id
  ),
  monthly as (
    insert into account_balances as b
      (tenant_id, entity_id, account_id, currency, period_month, entry_class, shard, debit_minor, credit_minor,
       base_debit_minor, base_credit_minor)
    select tenant, p_entity, account_id, currency, date_trunc('month', balance_date)::date, entry_class, shard,
           sum(debit_minor)::bigint, sum(credit_minor)::bigint, sum(base_debit_minor)::bigint,
           sum(base_credit_minor)::bigint
      from deltas
     group by account_id, currency, date_trunc('month', balance_date)::date, entry_class, shard
     order by account_id, currency, date_trunc('month', balance_date)::date, entry_class, shard
    on conflict (tenant_id, entity_id, account_id, currency, period_month, entry_class, shard)
    do update set debit_minor = b.debit_minor + excluded.debit_minor,
                  credit_minor = b.credit_minor + excluded.credit_minor,
                  base_debit_minor = b.base_debit_minor + excluded.base_debit_minor,
                  base_credit_minor = b.base_credit_minor + excluded.base_credit_minor
    returning 1
  )
  insert into account_daily_balances as b
    (tenant_id, entity_id, account_id, currency, balance_date, entry_class, shard, debit_minor, credit_minor,
     base_debit_minor, base_credit_minor)
  select tenant, p_entity, account_id, currency, balance_date, entry_class, shard, debit_minor, credit_minor,
         base_debit_minor, base_credit_minor
    from deltas
   where (select count(*) from monthly) > 0
   order by balance_date, account_id, currency, entry_class, shard
  on conflict (tenant_id, entity_id, balance_date, account_id, currency, entry_class, shard)
  do update set debit_minor = b.debit_minor + excluded.debit_minor,
                credit_minor = b.credit_minor + excluded.credit_minor,
                base_debit_minor = b.base_debit_minor + excluded.base_debit_minor,
                base_credit_minor = b.base_credit_minor + excluded.base_credit_minor;
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
  p_rates numeric[],
  p_base_amounts bigint[],
  p_line_roles text[],
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
    p_currencies, p_exponents, p_line_memos, p_rates, p_base_amounts, p_line_roles);
  insert into idempotency_keys (tenant_id, key, route, request_hash, response_status, response_body)
  values (tenant::uuid, p_key, p_route, p_request_hash, p_response_status, p_response_body);
  replayed := false;
  response_status := p_response_status;
  response_body := p_response_body;
end
$$;

revoke all on function ledger_post_entries(uuid, uuid, timestamptz, boolean, uuid[], date[], text[], text[], text[],
  uuid[], boolean[], integer[], smallint[], uuid[], text[], bigint[], text[], smallint[], text[], numeric[], bigint[],
  text[]) from public;
revoke all on function ledger_post_idempotent(text, text, text, integer, jsonb, uuid, uuid, timestamptz, uuid[],
  date[], text[], text[], text[], uuid[], boolean[], integer[], smallint[], uuid[], text[], bigint[], text[],
  smallint[], text[], numeric[], bigint[], text[]) from public;
grant execute on function ledger_post_entries(uuid, uuid, timestamptz, boolean, uuid[], date[], text[], text[], text[],
  uuid[], boolean[], integer[], smallint[], uuid[], text[], bigint[], text[], smallint[], text[], numeric[], bigint[],
  text[]) to {{runtime_role}};
grant execute on function ledger_post_idempotent(text, text, text, integer, jsonb, uuid, uuid, timestamptz, uuid[],
  date[], text[], text[], text[], uuid[], boolean[], integer[], smallint[], uuid[], text[], bigint[], text[],
  smallint[], text[], numeric[], bigint[], text[]) to {{runtime_role}};
