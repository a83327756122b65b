import type { TenantContext, TenantDb, TenantScopes } from '../../platform/database/tenant-scope.ts';
import { AppError } from '../../platform/errors.ts';
import { taxLineLabel } from '../accounts/chart-templates.ts';
import { addDays, addMonths, fiscalPosition, fiscalYearStart, lastDayOfMonth, monthOf } from '../dates.ts';
import type { EntryClass, TaxForm } from '../ledger.types.ts';
import { exponentOf, toBaseMinor } from '../money.ts';
import { ratesAsOf } from '../rates/exchange-rates.store.ts';
import {
  type AmountView,
  accountLines,
  type BalanceRow,
  balancesAsOf,
  balancesAsOfDates,
  balancesFromJournal,
  type LedgerLine,
  type LinePosition,
  type ReportAccount,
  reportBooks,
  transactionView,
} from './reports.store.ts';

/**
 * Trial balance, general ledger, income statement and balance sheet. Every figure is a
 * signed net in minor units, debit positive, until the renderer turns it into columns. Each
 * report checks itself (debits equal credits; assets equal liabilities plus equity) and,
 * when asked to verify, ties its balances to a GROUP BY over the journal lines.
 */
export type Nets = Map<string, Map<string, bigint>>;

export interface ReportChecks {
  balanced: boolean;
  tiesToJournal: boolean | null;
}

export interface TrialBalanceRow {
  account: ReportAccount;
  unadjusted: bigint;
  adjustments: bigint;
  adjusted: bigint;
  comparative: bigint;
}

/** How a report in the base currency translated foreign lines: the rates in force at its date. */
export interface Translation {
  baseCurrency: string;
  /** Latest rate on or before the report date for each foreign currency with a balance. */
  rates: Array<{ currency: string; date: string; rate: string }>;
  /**
   * Foreign-currency asset and liability balances remeasured at those rates, against their
   * base amounts as posted: the difference is the unrealised exchange gain (positive, debit)
   * or loss not yet booked.
   */
  remeasurement: Array<{
    account: ReportAccount;
    currency: string;
    exponent: number;
    balanceMinor: bigint;
    postedBaseMinor: bigint;
    remeasuredBaseMinor: bigint | null;
    differenceMinor: bigint | null;
  }>;
}

export type ReportView = 'transaction' | 'base';

export interface TrialBalance {
  asOf: string;
  compareAsOf: string;
  basis: 'pre-closing' | 'post-closing';
  currencies: Array<{ currency: string; exponent: number; rows: TrialBalanceRow[] }>;
  taxLines: Array<{
    currency: string;
    form: TaxForm;
    lines: Array<{ line: string; label: string; net: bigint }>;
  }> | null;
  translation: Translation | null;
  checks: ReportChecks;
}

export interface StatementLine {
  account: ReportAccount;
  amount: bigint;
  comparative: bigint;
}

export interface IncomeStatement {
  from: string;
  to: string;
  compareFrom: string;
  compareTo: string;
  currencies: Array<{ currency: string; exponent: number; revenue: StatementLine[]; expenses: StatementLine[] }>;
  translation: Translation | null;
  checks: ReportChecks;
}

export interface BalanceSheet {
  asOf: string;
  compareAsOf: string;
  currencies: Array<{
    currency: string;
    exponent: number;
    assets: StatementLine[];
    liabilities: StatementLine[];
    equity: StatementLine[];
    currentEarnings: { amount: bigint; comparative: bigint };
  }>;
  translation: Translation | null;
  checks: ReportChecks;
}

export interface GeneralLedgerPage {
  account: ReportAccount;
  currency: string;
  exponent: number;
  from: string;
  to: string;
  opening: bigint;
  closing: bigint;
  lines: Array<LedgerLine & { running: bigint }>;
  next: (LinePosition & { running: string }) | null;
  checks: ReportChecks;
}

/** Sums rows of the given classes to a net per currency and account. */
export function netsOf(rows: BalanceRow[], classes: readonly EntryClass[]): Nets {
  const nets: Nets = new Map();
  for (const row of rows) {
    if (!classes.includes(row.entryClass)) continue;
    const byAccount = nets.get(row.currency) ?? new Map<string, bigint>();
    byAccount.set(row.accountId, (byAccount.get(row.accountId) ?? 0n) + row.debitMinor - row.creditMinor);
    nets.set(row.currency, byAccount);
  }
  return nets;
}

function netOf(nets: Nets, currency: string, accountId: string): bigint {
  return nets.get(currency)?.get(accountId) ?? 0n;
}

function sameBalances(left: BalanceRow[], right: BalanceRow[]): boolean {
  const key = (row: BalanceRow) => `${row.accountId}|${row.currency}|${row.entryClass}`;
  const totals = new Map<string, bigint>();
  for (const row of left)
    totals.set(key(row), (totals.get(key(row)) ?? 0n) + row.debitMinor * 2n ** 64n + row.creditMinor);
  for (const row of right)
    totals.set(key(row), (totals.get(key(row)) ?? 0n) - row.debitMinor * 2n ** 64n - row.creditMinor);
  return [...totals.values()].every((value) => value === 0n);
}

function currenciesOf(...sets: Nets[]): string[] {
  return [...new Set(sets.flatMap((nets) => [...nets.keys()]))].sort();
}

function byNumber(left: { account: ReportAccount }, right: { account: ReportAccount }): number {
  return left.account.number < right.account.number ? -1 : left.account.number > right.account.number ? 1 : 0;
}

const allClasses: readonly EntryClass[] = ['unadjusted', 'adjustment', 'closing'];
const preClosing: readonly EntryClass[] = ['unadjusted', 'adjustment'];

export class ReportsService {
  readonly #scopes: Pick<TenantScopes, 'run'>;

  /** Request scopes, or a job's (report packs). */
  constructor(scopes: Pick<TenantScopes, 'run'>) {
    this.#scopes = scopes;
  }

  /**
   * Trial balance as of a date: unadjusted, adjustments and adjusted columns, a comparative
   * (by default the end of the previous month), optionally grouped by a form's tax lines.
   * Pre-closing leaves out year-end closing entries; post-closing includes them.
   * Errors: ENTITY_NOT_FOUND.
   */
  async trialBalance(
    tenant: TenantContext,
    entityId: string,
    options: {
      asOf: string;
      compareAsOf?: string | undefined;
      basis: TrialBalance['basis'];
      taxForm?: TaxForm | undefined;
      view?: ReportView | undefined;
      verify: boolean;
    },
  ): Promise<TrialBalance> {
    const compareAsOf = options.compareAsOf ?? lastDayOfMonth(addMonths(monthOf(options.asOf), -1));
    return await this.#scopes.run(tenant, async (db) => {
      const { books, accounts } = await reportBooks(db, entityId);
      const view = viewOf(options.view, books.baseCurrency);
      const [current = [], prior = []] = await balancesAsOfDates(db, entityId, [options.asOf, compareAsOf], null, view);
      const adjustedClasses = options.basis === 'post-closing' ? allClasses : preClosing;
      const unadjusted = netsOf(current, ['unadjusted']);
      const adjustments = netsOf(current, ['adjustment']);
      const adjusted = netsOf(current, adjustedClasses);
      const comparative = netsOf(prior, adjustedClasses);
      const currencies = currenciesOf(unadjusted, adjustments, adjusted, comparative)
        .map((currency) => {
          const rows: TrialBalanceRow[] = [];
          for (const account of accounts.values()) {
            const row = {
              account,
              unadjusted: netOf(unadjusted, currency, account.id),
              adjustments: netOf(adjustments, currency, account.id),
              adjusted: netOf(adjusted, currency, account.id),
              comparative: netOf(comparative, currency, account.id),
            };
            if (row.unadjusted || row.adjustments || row.adjusted || row.comparative) rows.push(row);
          }
          return { currency, exponent: exponentOf(currency), rows: rows.sort(byNumber) };
        })
        .filter((section) => section.rows.length > 0);
      const balanced = currencies.every((section) =>
        (['unadjusted', 'adjustments', 'adjusted', 'comparative'] as const).every(
          (column) => section.rows.reduce((total, row) => total + row[column], 0n) === 0n,
        ),
      );
      const taxLines = options.taxForm === undefined ? null : groupByTaxLine(currencies, options.taxForm);
      const tiesToJournal = options.verify ? await this.#ties(db, entityId, [options.asOf, compareAsOf], view) : null;
      const translation =
        view.kind === 'base' ? await translationOf(db, entityId, accounts, options.asOf, view.currency) : null;
      return {
        asOf: options.asOf,
        compareAsOf,
        basis: options.basis,
        currencies,
        taxLines,
        translation,
        checks: { balanced, tiesToJournal },
      };
    });
  }

  /**
   * Income statement for a date range with the same range a year earlier as comparative.
   * Closing entries are left out, so a closed year still shows its income.
   * Errors: ENTITY_NOT_FOUND, REPORT_RANGE_INVALID.
   */
  async incomeStatement(
    tenant: TenantContext,
    entityId: string,
    options: {
      from?: string | undefined;
      to: string;
      compareFrom?: string | undefined;
      compareTo?: string | undefined;
      view?: ReportView | undefined;
      verify: boolean;
    },
  ): Promise<IncomeStatement> {
    return await this.#scopes.run(tenant, async (db) => {
      const { books, accounts } = await reportBooks(db, entityId);
      const view = viewOf(options.view, books.baseCurrency);
      const from =
        options.from ??
        fiscalYearStart(fiscalPosition(monthOf(options.to), books.fiscalYearEnd).fiscalYear, books.fiscalYearEnd);
      const compareFrom = options.compareFrom ?? shiftYear(from, -1);
      const compareTo = options.compareTo ?? shiftYear(options.to, -1);
      if (from > options.to || compareFrom > compareTo) throw new AppError('REPORT_RANGE_INVALID');
      const current = await activity(db, entityId, from, options.to, view);
      const prior = await activity(db, entityId, compareFrom, compareTo, view);
      const currencies = currenciesOf(current, prior).map((currency) => {
        const lines = (type: 'revenue' | 'expense', sign: bigint) =>
          [...accounts.values()]
            .filter((account) => account.type === type)
            .map((account) => ({
              account,
              amount: sign * netOf(current, currency, account.id),
              comparative: sign * netOf(prior, currency, account.id),
            }))
            .filter((line) => line.amount !== 0n || line.comparative !== 0n)
            .sort(byNumber);
        return {
          currency,
          exponent: exponentOf(currency),
          revenue: lines('revenue', -1n),
          expenses: lines('expense', 1n),
        };
      });
      const dates = [addDays(from, -1), options.to, addDays(compareFrom, -1), compareTo];
      const tiesToJournal = options.verify ? await this.#ties(db, entityId, dates, view) : null;
      const translation =
        view.kind === 'base' ? await translationOf(db, entityId, accounts, options.to, view.currency) : null;
      return {
        from,
        to: options.to,
        compareFrom,
        compareTo,
        currencies,
        translation,
        checks: { balanced: true, tiesToJournal },
      };
    });
  }

  /**
   * Balance sheet as of a date with a comparative (a year earlier by default). Income not yet
   * closed to retained earnings shows as current-year earnings within equity.
   * Errors: ENTITY_NOT_FOUND.
   */
  async balanceSheet(
    tenant: TenantContext,
    entityId: string,
    options: { asOf: string; compareAsOf?: string | undefined; view?: ReportView | undefined; verify: boolean },
  ): Promise<BalanceSheet> {
    const compareAsOf = options.compareAsOf ?? shiftYear(options.asOf, -1);
    return await this.#scopes.run(tenant, async (db) => {
      const { books, accounts } = await reportBooks(db, entityId);
      const view = viewOf(options.view, books.baseCurrency);
      const [currentRows = [], priorRows = []] = await balancesAsOfDates(
        db,
        entityId,
        [options.asOf, compareAsOf],
        null,
        view,
      );
      const current = netsOf(currentRows, allClasses);
      const prior = netsOf(priorRows, allClasses);
      const currencies = currenciesOf(current, prior).map((currency) => {
        const section = (type: 'asset' | 'liability' | 'equity', sign: bigint) =>
          [...accounts.values()]
            .filter((account) => account.type === type)
            .map((account) => ({
              account,
              amount: sign * netOf(current, currency, account.id),
              comparative: sign * netOf(prior, currency, account.id),
            }))
            .filter((line) => line.amount !== 0n || line.comparative !== 0n)
            .sort(byNumber);
        const earnings = (nets: Nets) =>
          [...accounts.values()]
            .filter((account) => account.type === 'revenue' || account.type === 'expense')
            .reduce((total, account) => total - netOf(nets, currency, account.id), 0n);
        return {
          currency,
          exponent: exponentOf(currency),
          assets: section('asset', 1n),
          liabilities: section('liability', -1n),
          equity: section('equity', -1n),
          currentEarnings: { amount: earnings(current), comparative: earnings(prior) },
        };
      });
      const balanced = currencies.every((section) => {
        const sum = (lines: StatementLine[], pick: 'amount' | 'comparative') =>
          lines.reduce((total, line) => total + line[pick], 0n);
        return (['amount', 'comparative'] as const).every(
          (pick) =>
            sum(section.assets, pick) ===
            sum(section.liabilities, pick) + sum(section.equity, pick) + section.currentEarnings[pick],
        );
      });
      const tiesToJournal = options.verify ? await this.#ties(db, entityId, [options.asOf, compareAsOf], view) : null;
      const translation =
        view.kind === 'base' ? await translationOf(db, entityId, accounts, options.asOf, view.currency) : null;
      return { asOf: options.asOf, compareAsOf, currencies, translation, checks: { balanced, tiesToJournal } };
    });
  }

  /**
   * One account's lines in one currency with a running balance (debit positive), a page at a
   * time; the cursor carries the running balance so a page never rereads earlier lines.
   * Errors: ENTITY_NOT_FOUND, ACCOUNT_NOT_FOUND, REPORT_RANGE_INVALID.
   */
  async generalLedger(
    tenant: TenantContext,
    entityId: string,
    options: {
      accountId: string;
      currency?: string | undefined;
      from?: string | undefined;
      to: string;
      after: (LinePosition & { running: string }) | null;
      limit: number;
    },
  ): Promise<GeneralLedgerPage> {
    return await this.#scopes.run(tenant, async (db) => {
      const { books, accounts } = await reportBooks(db, entityId);
      const account = accounts.get(options.accountId);
      if (!account) throw new AppError('ACCOUNT_NOT_FOUND');
      const currency = options.currency ?? books.baseCurrency;
      const from =
        options.from ??
        fiscalYearStart(fiscalPosition(monthOf(options.to), books.fiscalYearEnd).fiscalYear, books.fiscalYearEnd);
      if (from > options.to) throw new AppError('REPORT_RANGE_INVALID');
      const balanceAt = async (date: string) =>
        netOf(netsOf(await balancesAsOf(db, entityId, date, account.id), allClasses), currency, account.id);
      const opening = await balanceAt(addDays(from, -1));
      const closing = await balanceAt(options.to);
      const page = await accountLines(
        db,
        entityId,
        account.id,
        currency,
        { from, to: options.to },
        options.after,
        options.limit + 1,
      );
      let running = options.after === null ? opening : BigInt(options.after.running);
      const lines = page.slice(0, options.limit).map((line) => {
        running += line.side === 'debit' ? line.amountMinor : -line.amountMinor;
        return { ...line, running };
      });
      const last = lines.at(-1);
      const next =
        page.length > options.limit && last
          ? { date: last.date, entryId: last.entryId, lineNo: last.lineNo, running: last.running.toString() }
          : null;
      // On the last page the running balance must land on the closing balance.
      const balanced = next !== null || running === closing;
      return {
        account,
        currency,
        exponent: exponentOf(currency),
        from,
        to: options.to,
        opening,
        closing,
        lines,
        next,
        checks: { balanced, tiesToJournal: null },
      };
    });
  }

  async #ties(db: TenantDb, entityId: string, dates: string[], view: AmountView = transactionView): Promise<boolean> {
    for (const date of new Set(dates)) {
      const fromBalances = await balancesAsOf(db, entityId, date, null, view);
      const fromJournal = await balancesFromJournal(db, entityId, date, view);
      if (!sameBalances(fromBalances, fromJournal)) return false;
    }
    return true;
  }
}

/** Net movement of each account between two dates (inclusive), closing entries left out. */
async function activity(db: TenantDb, entityId: string, from: string, to: string, view: AmountView): Promise<Nets> {
  const [endRows = [], startRows = []] = await balancesAsOfDates(db, entityId, [to, addDays(from, -1)], null, view);
  const end = netsOf(endRows, preClosing);
  const start = netsOf(startRows, preClosing);
  for (const [currency, byAccount] of start) {
    const target = end.get(currency) ?? new Map<string, bigint>();
    for (const [accountId, net] of byAccount) target.set(accountId, (target.get(accountId) ?? 0n) - net);
    end.set(currency, target);
  }
  return end;
}

function groupByTaxLine(currencies: TrialBalance['currencies'], form: TaxForm): NonNullable<TrialBalance['taxLines']> {
  return currencies.map((section) => {
    const totals = new Map<string, bigint>();
    for (const row of section.rows) {
      const line = row.account.taxLines[form] ?? 'unmapped';
      totals.set(line, (totals.get(line) ?? 0n) + row.adjusted);
    }
    const lines = [...totals]
      .filter(([, net]) => net !== 0n)
      .map(([line, net]) => ({
        line,
        label: line === 'unmapped' ? 'Not mapped to this form' : taxLineLabel(form, line),
        net,
      }))
      .sort((left, right) => left.line.localeCompare(right.line, 'en', { numeric: true }));
    return { currency: section.currency, form, lines };
  });
}

/** The same day a year earlier or later; 29 February becomes 28 February. */
function shiftYear(date: string, years: number): string {
  const year = String(Number(date.slice(0, 4)) + years).padStart(4, '0');
  const shifted = `${year}${date.slice(4)}`;
  return date.slice(5) === '02-29' ? `${year}-02-28` : shifted;
}

function viewOf(view: ReportView | undefined, baseCurrency: string): AmountView {
  return view === 'base' ? { kind: 'base', currency: baseCurrency } : transactionView;
}

/** The rates a base-currency report stands on and the remeasurement of foreign balances at them. */
async function translationOf(
  db: TenantDb,
  entityId: string,
  accounts: Map<string, ReportAccount>,
  asOf: string,
  baseCurrency: string,
): Promise<Translation> {
  const foreign = (await balancesAsOf(db, entityId, asOf)).filter((row) => row.currency !== baseCurrency);
  const rates = await ratesAsOf(db, entityId, asOf);
  const transactionNets = netsOf(foreign, allClasses);
  const remeasurement: Translation['remeasurement'] = [];
  for (const [currency, byAccount] of transactionNets) {
    const rate = rates.get(currency);
    for (const [accountId, balance] of byAccount) {
      const account = accounts.get(accountId);
      if (!account || (account.type !== 'asset' && account.type !== 'liability') || balance === 0n) continue;
      const postedBase = postedBaseOf(foreign, accountId, currency);
      const remeasured =
        rate === undefined
          ? null
          : (balance < 0n ? -1n : 1n) *
            toBaseMinor(balance < 0n ? -balance : balance, rate.rate, exponentOf(currency), exponentOf(baseCurrency));
      remeasurement.push({
        account,
        currency,
        exponent: exponentOf(currency),
        balanceMinor: balance,
        postedBaseMinor: postedBase,
        remeasuredBaseMinor: remeasured,
        differenceMinor: remeasured === null ? null : remeasured - postedBase,
      });
    }
  }
  const currencies = [...transactionNets.keys()].sort();
  return {
    baseCurrency,
    rates: currencies.flatMap((currency) => {
      const rate = rates.get(currency);
      return rate ? [{ currency, date: rate.date, rate: rate.rate }] : [];
    }),
    remeasurement: remeasurement.sort(
      (left, right) => byNumber(left, right) || left.currency.localeCompare(right.currency),
    ),
  };
}

/** The base amount posted for one account's lines in one currency (balances keep both). */
function postedBaseOf(foreign: BalanceRow[], accountId: string, currency: string): bigint {
  return foreign
    .filter((row) => row.accountId === accountId && row.currency === currency)
    .reduce((total, row) => total + row.baseDebitMinor - row.baseCreditMinor, 0n);
}
