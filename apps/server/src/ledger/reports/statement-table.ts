import { formatId } from '../../platform/ids.ts';
import type { BalanceSheet, IncomeStatement, StatementLine, TrialBalance } from './reports.service.ts';

/**
 * A report laid out as one table, the shape both the XLSX and the PDF renderers draw: a
 * title, a subtitle, column headers, and rows that are section headings, account lines or
 * totals. Amounts stay integer minor units with their exponent until a renderer formats them.
 */
export interface StatementRow {
  kind: 'heading' | 'line' | 'total';
  text: string[];
  amounts: bigint[];
  exponent: number;
}

export interface StatementTable {
  title: string;
  subtitle: string;
  /** Headers of the text columns, then of the amount columns. */
  textColumns: string[];
  amountColumns: string[];
  rows: StatementRow[];
}

function heading(label: string): StatementRow {
  return { kind: 'heading', text: [label], amounts: [], exponent: 0 };
}

function sum(lines: StatementLine[], pick: 'amount' | 'comparative'): bigint {
  return lines.reduce((total, line) => total + line[pick], 0n);
}

function statementLines(lines: StatementLine[], exponent: number): StatementRow[] {
  return lines.map((line) => ({
    kind: 'line',
    text: [line.account.number, line.account.name],
    amounts: [line.amount, line.comparative],
    exponent,
  }));
}

function total(label: string, amounts: bigint[], exponent: number): StatementRow {
  return { kind: 'total', text: ['', label], amounts, exponent };
}

function debitCredit(net: bigint): bigint[] {
  return [net > 0n ? net : 0n, net < 0n ? -net : 0n];
}

function viewNote(translation: { baseCurrency: string } | null): string {
  return translation === null ? '' : `, in ${translation.baseCurrency} at posted rates`;
}

export function trialBalanceTable(entityId: string, report: TrialBalance): StatementTable {
  const columns = ['unadjusted', 'adjustments', 'adjusted', 'comparative'] as const;
  const rows: StatementRow[] = [];
  for (const section of report.currencies) {
    rows.push(heading(section.currency));
    for (const row of section.rows) {
      rows.push({
        kind: 'line',
        text: [row.account.number, row.account.name],
        amounts: columns.flatMap((column) => debitCredit(row[column])),
        exponent: section.exponent,
      });
    }
    const totals = columns.flatMap((column) => [
      section.rows.reduce((sum, row) => sum + (row[column] > 0n ? row[column] : 0n), 0n),
      section.rows.reduce((sum, row) => sum + (row[column] < 0n ? -row[column] : 0n), 0n),
    ]);
    rows.push(total(`Total ${section.currency}`, totals, section.exponent));
  }
  return {
    title: 'Trial balance',
    subtitle: `${formatId('entity', entityId)}: as of ${report.asOf}, ${report.basis}, comparative ${report.compareAsOf}${viewNote(report.translation)}`,
    textColumns: ['Account', 'Name'],
    amountColumns: [
      'Unadjusted debit',
      'Unadjusted credit',
      'Adjustments debit',
      'Adjustments credit',
      'Adjusted debit',
      'Adjusted credit',
      `Debit ${report.compareAsOf}`,
      `Credit ${report.compareAsOf}`,
    ],
    rows,
  };
}

export function incomeStatementTable(entityId: string, report: IncomeStatement): StatementTable {
  const rows: StatementRow[] = [];
  for (const section of report.currencies) {
    const exponent = section.exponent;
    const revenue = [sum(section.revenue, 'amount'), sum(section.revenue, 'comparative')];
    const expenses = [sum(section.expenses, 'amount'), sum(section.expenses, 'comparative')];
    rows.push(
      heading(`Revenue (${section.currency})`),
      ...statementLines(section.revenue, exponent),
      total('Total revenue', revenue, exponent),
      heading(`Expenses (${section.currency})`),
      ...statementLines(section.expenses, exponent),
      total('Total expenses', expenses, exponent),
      total(
        'Net income',
        revenue.map((amount, index) => amount - (expenses[index] ?? 0n)),
        exponent,
      ),
    );
  }
  return {
    title: 'Income statement',
    subtitle: `${formatId('entity', entityId)}: ${report.from} to ${report.to}, comparative ${report.compareFrom} to ${report.compareTo}${viewNote(report.translation)}`,
    textColumns: ['Account', 'Name'],
    amountColumns: [`${report.from} to ${report.to}`, `${report.compareFrom} to ${report.compareTo}`],
    rows,
  };
}

export function balanceSheetTable(entityId: string, report: BalanceSheet): StatementTable {
  const rows: StatementRow[] = [];
  for (const section of report.currencies) {
    const exponent = section.exponent;
    const pair = (lines: StatementLine[]) => [sum(lines, 'amount'), sum(lines, 'comparative')];
    const earnings = [section.currentEarnings.amount, section.currentEarnings.comparative];
    const equity = pair(section.equity).map((amount, index) => amount + (earnings[index] ?? 0n));
    const liabilities = pair(section.liabilities);
    rows.push(
      heading(`Assets (${section.currency})`),
      ...statementLines(section.assets, exponent),
      total('Total assets', pair(section.assets), exponent),
      heading(`Liabilities (${section.currency})`),
      ...statementLines(section.liabilities, exponent),
      total('Total liabilities', liabilities, exponent),
      heading(`Equity (${section.currency})`),
      ...statementLines(section.equity, exponent),
      { kind: 'line', text: ['', 'Current-year earnings'], amounts: earnings, exponent },
      total('Total equity', equity, exponent),
      total(
        'Total liabilities and equity',
        liabilities.map((amount, index) => amount + (equity[index] ?? 0n)),
        exponent,
      ),
    );
  }
  return {
    title: 'Balance sheet',
    subtitle: `${formatId('entity', entityId)}: as of ${report.asOf}, comparative ${report.compareAsOf}${viewNote(report.translation)}`,
    textColumns: ['Account', 'Name'],
    amountColumns: [report.asOf, report.compareAsOf],
    rows,
  };
}
