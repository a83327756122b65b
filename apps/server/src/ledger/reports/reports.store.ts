import type { NamedStatement, TenantDb } from '../../platform/database/tenant-scope.ts';
import { type Books, type BooksRow, booksOf } from '../books.store.ts';
import { addDays, lastDayOfMonth, monthOf } from '../dates.ts';
import type { Account, EntryClass } from '../ledger.types.ts';

/**
 * Report reads. Balances come from `account_balances` (accounts × months × shards rows),
 * never from a scan of history; the part of the as-of month that a monthly row cannot answer
 * comes from `account_daily_balances`, from whichever side of the month is shorter (at most
 * 16 days of daily rows).
 */
export interface BalanceRow {
  accountId: string;
  currency: string;
  entryClass: EntryClass;
  debitMinor: bigint;
  creditMinor: bigint;
  /** The same movements in the base currency, at the rates they were posted with. */
  baseDebitMinor: bigint;
  baseCreditMinor: bigint;
}

/** How to assemble "as of a date" from monthly rows plus a few days of daily rows. */
export interface AsOfPlan {
  /** Monthly rows up to and including this month. */
  monthsThrough: string;
  /** Daily rows in [daysFrom, daysTo] are added (sign 1) or subtracted (sign -1); none when null. */
  daysFrom: string | null;
  daysTo: string | null;
  daysSign: 1 | -1;
}

export function asOfPlan(asOf: string): AsOfPlan {
  const month = monthOf(asOf);
  const monthEnd = lastDayOfMonth(month);
  if (asOf === monthEnd) return { monthsThrough: month, daysFrom: null, daysTo: null, daysSign: 1 };
  const previousMonth = monthOf(addDays(month, -1));
  if (Number(asOf.slice(8, 10)) <= 15) {
    return { monthsThrough: previousMonth, daysFrom: month, daysTo: asOf, daysSign: 1 };
  }
  return { monthsThrough: month, daysFrom: addDays(asOf, 1), daysTo: monthEnd, daysSign: -1 };
}

interface RawBalance {
  account_id: string;
  currency: string;
  entry_class: EntryClass;
  debit: string;
  credit: string;
  base_debit: string;
  base_credit: string;
}

function fromRaw(row: RawBalance): BalanceRow {
  return {
    accountId: row.account_id,
    currency: row.currency,
    entryClass: row.entry_class,
    debitMinor: BigInt(row.debit),
    creditMinor: BigInt(row.credit),
    baseDebitMinor: BigInt(row.base_debit),
    baseCreditMinor: BigInt(row.base_credit),
  };
}

/**
 * Which amounts a report reads: each line's own currency, or every line translated into the
 * entity's base currency at the rate it was posted with (one section in `currency`).
 */
export type AmountView = { kind: 'transaction' } | { kind: 'base'; currency: string };

export const transactionView: AmountView = { kind: 'transaction' };

/**
 * The balances query, for each as-of plan in the arrays $2..$5 (one position per date): the
 * monthly rows through its month, plus or minus its few daily rows. Amounts are summed as
 * bigint (PostgreSQL accumulates those exactly, in 128 bits, and returns numeric): debit and
 * credit totals are never negative, so the daily part's sign cannot overflow. Every report
 * runs it, so it is a named statement, parsed and rewritten with its two tables' row-level
 * security once per connection. PostgreSQL still plans it for each call's dates (it keeps
 * preferring custom plans here, about 0.8 ms each).
 */
function balancesStatement(view: AmountView): NamedStatement {
  const [name, debit, credit, currency] =
    view.kind === 'base'
      ? ['ledger_balances_as_of_base', 'base_debit_minor', 'base_credit_minor', '$7::text']
      : ['ledger_balances_as_of', 'debit_minor', 'credit_minor', 'currency'];
  return {
    name,
    text: `select d.position, b.account_id, b.currency, b.entry_class, sum(b.debit)::text as debit,
                  sum(b.credit)::text as credit, sum(b.base_debit)::text as base_debit,
                  sum(b.base_credit)::text as base_credit
             from unnest($2::date[], $3::date[], $4::date[], $5::integer[]) with ordinality
                    as d(months_through, days_from, days_to, days_sign, position)
            cross join lateral (
              select account_id, ${currency} as currency, entry_class, ${debit} as debit, ${credit} as credit,
                     base_debit_minor as base_debit, base_credit_minor as base_credit
                from account_balances
               where entity_id = $1 and period_month <= d.months_through
                 and ($6::uuid is null or account_id = $6::uuid)
              union all
              select account_id, ${currency}, entry_class, d.days_sign * ${debit}, d.days_sign * ${credit},
                     d.days_sign * base_debit_minor, d.days_sign * base_credit_minor
                from account_daily_balances
               where d.days_from is not null and entity_id = $1
                 and balance_date between d.days_from and d.days_to
                 and ($6::uuid is null or account_id = $6::uuid)) b
            group by d.position, b.account_id, b.currency, b.entry_class`,
  };
}

/**
 * Cumulative debits and credits of every account (or one) as of the end of each date, in one
 * round trip: the balances of `asOfs[i]` are element i.
 */
export async function balancesAsOfDates(
  db: TenantDb,
  entityId: string,
  asOfs: readonly string[],
  accountId: string | null = null,
  view: AmountView = transactionView,
): Promise<BalanceRow[][]> {
  const plans = asOfs.map(asOfPlan);
  const { rows } = await db.query<RawBalance & { position: string }>(balancesStatement(view), [
    entityId,
    plans.map((plan) => plan.monthsThrough),
    plans.map((plan) => plan.daysFrom),
    plans.map((plan) => plan.daysTo),
    plans.map((plan) => plan.daysSign),
    accountId,
    ...(view.kind === 'base' ? [view.currency] : []),
  ]);
  const balances = asOfs.map((): BalanceRow[] => []);
  for (const row of rows) balances[Number(row.position) - 1]?.push(fromRaw(row));
  return balances;
}

/** Cumulative debits and credits of every account (or one) as of the end of `asOf`. */
export async function balancesAsOf(
  db: TenantDb,
  entityId: string,
  asOf: string,
  accountId: string | null = null,
  view: AmountView = transactionView,
): Promise<BalanceRow[]> {
  const [balances] = await balancesAsOfDates(db, entityId, [asOf], accountId, view);
  return balances ?? [];
}

/** The same figures by a plain GROUP BY over every line: the tie-out and the benchmark's baseline. */
export async function balancesFromJournal(
  db: TenantDb,
  entityId: string,
  asOf: string,
  view: AmountView = transactionView,
): Promise<BalanceRow[]> {
  const [amount, currency] = view.kind === 'base' ? ['base_amount_minor', '$3::text'] : ['amount_minor', 'currency'];
  const { rows } = await db.query<RawBalance>(
    `select account_id, ${currency} as currency, entry_class,
            coalesce(sum(${amount}) filter (where side = 'debit'), 0)::text as debit,
            coalesce(sum(${amount}) filter (where side = 'credit'), 0)::text as credit,
            coalesce(sum(base_amount_minor) filter (where side = 'debit'), 0)::text as base_debit,
            coalesce(sum(base_amount_minor) filter (where side = 'credit'), 0)::text as base_credit
       from journal_lines where entity_id = $1 and entry_date <= $2::date
      group by 1, 2, 3`,
    [entityId, asOf, ...(view.kind === 'base' ? [view.currency] : [])],
  );
  return rows.map(fromRaw);
}

export interface ReportAccount {
  id: string;
  number: string;
  name: string;
  type: Account['type'];
  normalBalance: Account['normalBalance'];
  taxLines: Account['taxLines'];
}

/**
 * Every report reads the entity's books and then its accounts; one statement reads both, a
 * round trip less on each report. An entity without accounts is one row of nulls beside it.
 */
const reportBooksStatement: NamedStatement = {
  name: 'ledger_report_books',
  text: `select e.base_currency, e.fiscal_year_end, e.status,
                a.id, a.number, a.name, a.account_type, a.normal_balance, a.tax_lines
           from entities e
           left join accounts a on a.entity_id = e.id
          where e.id = $1`,
};

/**
 * The entity's books (as loadBooks reads them) and its accounts by id. Row-level security
 * applies to both tables, so another firm's entity or one out of the caller's scope is the
 * same 404 as a missing one. Errors: ENTITY_NOT_FOUND.
 */
export async function reportBooks(
  db: TenantDb,
  entityId: string,
): Promise<{ books: Books; accounts: Map<string, ReportAccount> }> {
  const { rows } = await db.query<
    BooksRow & {
      id: string | null;
      number: string;
      name: string;
      account_type: Account['type'];
      normal_balance: Account['normalBalance'];
      tax_lines: Account['taxLines'];
    }
  >(reportBooksStatement, [entityId]);
  const books = booksOf(entityId, rows[0]);
  const accounts = new Map<string, ReportAccount>();
  for (const row of rows) {
    if (row.id === null) continue;
    accounts.set(row.id, {
      id: row.id,
      number: row.number,
      name: row.name,
      type: row.account_type,
      normalBalance: row.normal_balance,
      taxLines: row.tax_lines,
    });
  }
  return { books, accounts };
}

export interface LedgerLine {
  date: string;
  entryId: string;
  lineNo: number;
  kind: string;
  memo: string;
  lineMemo: string | null;
  side: 'debit' | 'credit';
  amountMinor: bigint;
}

export interface LinePosition {
  date: string;
  entryId: string;
  lineNo: number;
}

/** One account's lines in one currency between two dates, by date, entry and line, keyset-paged. */
export async function accountLines(
  db: TenantDb,
  entityId: string,
  accountId: string,
  currency: string,
  range: { from: string; to: string },
  after: LinePosition | null,
  limit: number,
): Promise<LedgerLine[]> {
  const { rows } = await db.query<{
    entry_date: string;
    entry_id: string;
    line_no: number;
    kind: string;
    memo: string;
    line_memo: string | null;
    side: 'debit' | 'credit';
    amount_minor: string;
  }>(
    `select l.entry_date::text as entry_date, l.entry_id, l.line_no, e.kind, e.memo, l.memo as line_memo, l.side,
            l.amount_minor::text as amount_minor
       from journal_lines l
       join journal_entries e on e.tenant_id = l.tenant_id and e.id = l.entry_id
      where l.entity_id = $1 and l.account_id = $2 and l.currency = $3
        and l.entry_date between $4::date and $5::date
        and ($6::date is null or (l.entry_date, l.entry_id, l.line_no) > ($6::date, $7::uuid, $8::smallint))
      order by l.entry_date, l.entry_id, l.line_no
      limit $9`,
    [
      entityId,
      accountId,
      currency,
      range.from,
      range.to,
      after?.date ?? null,
      after?.entryId ?? null,
      after?.lineNo ?? null,
      limit,
    ],
  );
  return rows.map((row) => ({
    date: row.entry_date,
    entryId: row.entry_id,
    lineNo: row.line_no,
    kind: row.kind,
    memo: row.memo,
    lineMemo: row.line_memo,
    side: row.side,
    amountMinor: BigInt(row.amount_minor),
  }));
}
