import { formatId } from '../../platform/ids.ts';
import { formatDecimal, jsonAmount } from '../money.ts';
import type {
  BalanceSheet,
  GeneralLedgerPage,
  IncomeStatement,
  StatementLine,
  Translation,
  TrialBalance,
} from './reports.service.ts';
import type { ReportAccount } from './reports.store.ts';

/** Reports to JSON (amounts in minor units) and to CSV (decimal amounts, one header row). */

function column(net: bigint) {
  return { debitMinor: jsonAmount(net > 0n ? net : 0n), creditMinor: jsonAmount(net < 0n ? -net : 0n) };
}

function accountRef(account: ReportAccount) {
  return { id: formatId('account', account.id), number: account.number, name: account.name, type: account.type };
}

function columnTotal(
  rows: TrialBalance['currencies'][number]['rows'],
  pick: 'unadjusted' | 'adjustments' | 'adjusted' | 'comparative',
) {
  let debit = 0n;
  let credit = 0n;
  for (const row of rows) {
    if (row[pick] > 0n) debit += row[pick];
    else credit -= row[pick];
  }
  return { debitMinor: jsonAmount(debit), creditMinor: jsonAmount(credit) };
}

export function translationJson(translation: Translation | null) {
  if (translation === null) return null;
  return {
    baseCurrency: translation.baseCurrency,
    rates: translation.rates,
    remeasurement: translation.remeasurement.map((row) => ({
      account: accountRef(row.account),
      currency: row.currency,
      exponent: row.exponent,
      balanceMinor: jsonAmount(row.balanceMinor),
      postedBaseMinor: jsonAmount(row.postedBaseMinor),
      remeasuredBaseMinor: row.remeasuredBaseMinor === null ? null : jsonAmount(row.remeasuredBaseMinor),
      differenceMinor: row.differenceMinor === null ? null : jsonAmount(row.differenceMinor),
    })),
  };
}

export function trialBalanceJson(entityId: string, report: TrialBalance) {
  return {
    entityId: formatId('entity', entityId),
    asOf: report.asOf,
    compareAsOf: report.compareAsOf,
    basis: report.basis,
    currencies: report.currencies.map((section) => ({
      currency: section.currency,
      exponent: section.exponent,
      rows: section.rows.map((row) => ({
        account: accountRef(row.account),
        unadjusted: column(row.unadjusted),
        adjustments: column(row.adjustments),
        adjusted: column(row.adjusted),
        comparative: column(row.comparative),
      })),
      totals: {
        unadjusted: columnTotal(section.rows, 'unadjusted'),
        adjustments: columnTotal(section.rows, 'adjustments'),
        adjusted: columnTotal(section.rows, 'adjusted'),
        comparative: columnTotal(section.rows, 'comparative'),
      },
    })),
    taxLines:
      report.taxLines?.map((group) => ({
        currency: group.currency,
        form: group.form,
        lines: group.lines.map((line) => ({ line: line.line, label: line.label, ...column(line.net) })),
      })) ?? null,
    translation: translationJson(report.translation),
    checks: report.checks,
  };
}

function statementLine(line: StatementLine) {
  return {
    account: accountRef(line.account),
    amountMinor: jsonAmount(line.amount),
    comparativeMinor: jsonAmount(line.comparative),
  };
}

function total(lines: StatementLine[]) {
  return {
    amountMinor: jsonAmount(lines.reduce((sum, line) => sum + line.amount, 0n)),
    comparativeMinor: jsonAmount(lines.reduce((sum, line) => sum + line.comparative, 0n)),
  };
}

export function incomeStatementJson(entityId: string, report: IncomeStatement) {
  return {
    entityId: formatId('entity', entityId),
    from: report.from,
    to: report.to,
    compareFrom: report.compareFrom,
    compareTo: report.compareTo,
    currencies: report.currencies.map((section) => {
      const net = (pick: 'amount' | 'comparative') =>
        section.revenue.reduce((sum, line) => sum + line[pick], 0n) -
        section.expenses.reduce((sum, line) => sum + line[pick], 0n);
      return {
        currency: section.currency,
        exponent: section.exponent,
        revenue: section.revenue.map(statementLine),
        totalRevenue: total(section.revenue),
        expenses: section.expenses.map(statementLine),
        totalExpenses: total(section.expenses),
        netIncome: { amountMinor: jsonAmount(net('amount')), comparativeMinor: jsonAmount(net('comparative')) },
      };
    }),
    translation: translationJson(report.translation),
    checks: report.checks,
  };
}

export function balanceSheetJson(entityId: string, report: BalanceSheet) {
  return {
    entityId: formatId('entity', entityId),
    asOf: report.asOf,
    compareAsOf: report.compareAsOf,
    currencies: report.currencies.map((section) => ({
      currency: section.currency,
      exponent: section.exponent,
      assets: section.assets.map(statementLine),
      totalAssets: total(section.assets),
      liabilities: section.liabilities.map(statementLine),
      totalLiabilities: total(section.liabilities),
      equity: section.equity.map(statementLine),
      currentEarnings: {
        amountMinor: jsonAmount(section.currentEarnings.amount),
        comparativeMinor: jsonAmount(section.currentEarnings.comparative),
      },
      totalEquity: {
        amountMinor: jsonAmount(
          section.equity.reduce((sum, line) => sum + line.amount, 0n) + section.currentEarnings.amount,
        ),
        comparativeMinor: jsonAmount(
          section.equity.reduce((sum, line) => sum + line.comparative, 0n) + section.currentEarnings.comparative,
        ),
      },
    })),
    translation: translationJson(report.translation),
    checks: report.checks,
  };
}

export function generalLedgerJson(entityId: string, page: GeneralLedgerPage, nextCursor: string | null) {
  return {
    entityId: formatId('entity', entityId),
    account: accountRef(page.account),
    currency: page.currency,
    exponent: page.exponent,
    from: page.from,
    to: page.to,
    openingBalanceMinor: jsonAmount(page.opening),
    closingBalanceMinor: jsonAmount(page.closing),
    items: page.lines.map((line) => ({
      date: line.date,
      entryId: formatId('journalEntry', line.entryId),
      lineNo: line.lineNo,
      kind: line.kind,
      memo: line.lineMemo ?? line.memo,
      debitMinor: jsonAmount(line.side === 'debit' ? line.amountMinor : 0n),
      creditMinor: jsonAmount(line.side === 'credit' ? line.amountMinor : 0n),
      runningBalanceMinor: jsonAmount(line.running),
    })),
    nextCursor,
    checks: page.checks,
  };
}

/** RFC 4180 fields: quoted when they hold a comma, quote or line break; formulas defused. */
function csvField(value: string): string {
  const safe = /^[=+\-@\t\r]/.test(value) && !/^-?[0-9.]+$/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
}

function csv(rows: string[][]): string {
  return `${rows.map((row) => row.map(csvField).join(',')).join('\r\n')}\r\n`;
}

function debitCredit(net: bigint, exponent: number): [string, string] {
  return [formatDecimal(net > 0n ? net : 0n, exponent), formatDecimal(net < 0n ? -net : 0n, exponent)];
}

export function trialBalanceCsv(report: TrialBalance): string {
  const rows: string[][] = [
    [
      'currency',
      'account',
      'name',
      'type',
      'unadjusted_debit',
      'unadjusted_credit',
      'adjustments_debit',
      'adjustments_credit',
      'adjusted_debit',
      'adjusted_credit',
      `comparative_debit_${report.compareAsOf}`,
      `comparative_credit_${report.compareAsOf}`,
    ],
  ];
  for (const section of report.currencies) {
    for (const row of section.rows) {
      rows.push([
        section.currency,
        row.account.number,
        row.account.name,
        row.account.type,
        ...debitCredit(row.unadjusted, section.exponent),
        ...debitCredit(row.adjustments, section.exponent),
        ...debitCredit(row.adjusted, section.exponent),
        ...debitCredit(row.comparative, section.exponent),
      ]);
    }
  }
  return csv(rows);
}

type StatementSection = { currency: string; exponent: number; groups: Array<[string, StatementLine[]]> };

/** The income statement's sections for statementCsv: revenue, then expenses, per currency. */
export function incomeStatementSections(report: IncomeStatement): StatementSection[] {
  return report.currencies.map((section) => ({
    currency: section.currency,
    exponent: section.exponent,
    groups: [
      ['revenue', section.revenue],
      ['expenses', section.expenses],
    ],
  }));
}

/** The balance sheet's sections for statementCsv: assets, liabilities, equity, per currency. */
export function balanceSheetSections(report: BalanceSheet): StatementSection[] {
  return report.currencies.map((section) => ({
    currency: section.currency,
    exponent: section.exponent,
    groups: [
      ['assets', section.assets],
      ['liabilities', section.liabilities],
      ['equity', section.equity],
    ],
  }));
}

export function statementCsv(sections: StatementSection[]): string {
  const rows: string[][] = [['currency', 'section', 'account', 'name', 'amount', 'comparative']];
  for (const section of sections) {
    for (const [name, lines] of section.groups) {
      for (const line of lines) {
        rows.push([
          section.currency,
          name,
          line.account.number,
          line.account.name,
          formatDecimal(line.amount, section.exponent),
          formatDecimal(line.comparative, section.exponent),
        ]);
      }
    }
  }
  return csv(rows);
}

export function generalLedgerCsv(page: GeneralLedgerPage): string {
  const rows: string[][] = [['date', 'entry', 'line', 'kind', 'memo', 'debit', 'credit', 'balance']];
  for (const line of page.lines) {
    rows.push([
      line.date,
      formatId('journalEntry', line.entryId),
      String(line.lineNo),
      line.kind,
      line.lineMemo ?? line.memo,
      formatDecimal(line.side === 'debit' ? line.amountMinor : 0n, page.exponent),
      formatDecimal(line.side === 'credit' ? line.amountMinor : 0n, page.exponent),
      formatDecimal(line.running, page.exponent),
    ]);
  }
  return csv(rows);
}
