import { CsvError, parse } from 'csv-parse/sync';
import { AppError, type ErrorCode, isAppError } from '../../platform/errors.ts';
import { checkDate } from '../dates.ts';
import { ledgerLimits } from '../ledger.limits.ts';
import { checkCurrency, normalizeRate, parseRate } from '../money.ts';

/**
 * Exchange rates from a CSV file: a header row naming `date`, `currency` and `rate` (in any
 * order), then one rate a row. Reading the file and checking its rows are pure functions; the
 * service checks the rows against the entity's base currency and records all or none.
 */
export const rateCsvColumns = ['date', 'currency', 'rate'] as const;
type RateCsvColumn = (typeof rateCsvColumns)[number];

/** A row as given, numbered by its line in the file (the header is line 1). */
export interface RateCsvRow {
  row: number;
  date: string;
  currency: string;
  rate: string;
}

export interface RateRowError {
  column: RateCsvColumn | null;
  code: ErrorCode;
  detail: string;
}

export interface RateRowProblem {
  row: number;
  errors: RateRowError[];
}

function unreadable(detail: string): AppError {
  return new AppError('LEDGER_RATES_CSV_INVALID', detail);
}

/** Reads the rows of a rate file. Errors: LEDGER_RATES_CSV_INVALID. */
export function rateRowsFromCsv(text: string): RateCsvRow[] {
  if (Buffer.byteLength(text) > ledgerLimits.ratesImportBytesMax) {
    throw unreadable(`The file is larger than ${ledgerLimits.ratesImportBytesMax} bytes.`);
  }
  let records: Array<{ record: string[]; info: { lines: number } }>;
  try {
    // With `info`, each record comes with its line number (the typings know only plain records).
    records = parse(text, {
      bom: true,
      trim: true,
      skip_empty_lines: true,
      info: true,
      max_record_size: ledgerLimits.rateCsvRecordBytesMax,
      to_line: ledgerLimits.ratesPerImportMax + 2,
    }) as unknown as typeof records;
  } catch (error) {
    if (error instanceof CsvError) throw unreadable(error.message);
    throw error;
  }
  const [header, ...body] = records;
  if (header === undefined) throw unreadable('The file is empty; it needs a header row: date,currency,rate.');
  const columns = header.record.map((column) => column.toLowerCase());
  const unknown = columns.filter((column) => !(rateCsvColumns as readonly string[]).includes(column));
  if (unknown.length > 0) {
    throw unreadable(
      `Unknown column(s) ${unknown.map((column) => `"${column}"`).join(', ')}; the columns are date, currency, rate.`,
    );
  }
  const missing = rateCsvColumns.filter((column) => !columns.includes(column));
  if (missing.length > 0) throw unreadable(`The header row lacks ${missing.join(', ')}.`);
  if (new Set(columns).size !== columns.length) throw unreadable('A column is named twice.');
  if (body.length === 0) throw unreadable('The file holds a header row and no rates.');
  if (body.length > ledgerLimits.ratesPerImportMax) {
    throw unreadable(`An import holds at most ${ledgerLimits.ratesPerImportMax} rates.`);
  }
  const position = (column: RateCsvColumn) => columns.indexOf(column);
  return body.map(({ record, info }) => ({
    row: info.lines,
    date: record[position('date')] ?? '',
    currency: record[position('currency')] ?? '',
    rate: record[position('rate')] ?? '',
  }));
}

/** Runs one check, turning its refusal into a row error. */
function rowError(column: RateCsvColumn, check: () => void): RateRowError[] {
  try {
    check();
    return [];
  } catch (error) {
    if (!isAppError(error)) throw error;
    return [{ column, code: error.code, detail: error.detail ?? error.message }];
  }
}

/**
 * Checks every row as `PUT …/exchange-rates` checks a rate, plus what only a file can get
 * wrong: the same currency and date twice. Returns the problems of every bad row, in file
 * order (empty when all are good).
 */
export function checkRateRows(rows: readonly RateCsvRow[], baseCurrency: string): RateRowProblem[] {
  const firstRowOf = new Map<string, number>();
  const problems: RateRowProblem[] = [];
  for (const row of rows) {
    const where = `row ${row.row}`;
    const errors = [
      ...rowError('date', () => checkDate(row.date, `${where} date`)),
      ...rowError('currency', () => checkCurrency(row.currency, undefined, `${where} currency`)),
      ...rowError('rate', () => parseRate(row.rate, `${where} rate`)),
    ];
    if (row.currency === baseCurrency) {
      errors.push({
        column: 'currency',
        code: 'LEDGER_RATE_CURRENCY_IS_BASE',
        detail: `${where}: ${baseCurrency} is the base currency`,
      });
    }
    const key = `${row.currency}\u0000${row.date}`;
    const first = firstRowOf.get(key);
    if (first === undefined) firstRowOf.set(key, row.row);
    else {
      errors.push({
        column: null,
        code: 'LEDGER_RATE_DUPLICATE',
        detail: `${where}: ${row.currency} on ${row.date} is already given on row ${first}`,
      });
    }
    if (errors.length > 0) problems.push({ row: row.row, errors });
  }
  return problems;
}

/** The refusal of a file with bad rows: every bad row in `rows`, the first few named in the detail. */
export function rowsInvalid(problems: readonly RateRowProblem[]): AppError {
  const named = problems.slice(0, ledgerLimits.rateImportProblemsMax);
  const list = named.map((problem) => problem.row).join(', ');
  const more = problems.length > named.length ? ` and ${problems.length - named.length} more` : '';
  const rows = problems.length === 1 ? `Row ${list} is` : `Rows ${list}${more} are`;
  return new AppError('LEDGER_RATES_IMPORT_ROWS_INVALID', `${rows} invalid; no rate was recorded.`, {
    rows: named,
  });
}

/** The rates of good rows, normalized as the database compares them. */
export function ratesOfRows(rows: readonly RateCsvRow[]): Array<{ currency: string; date: string; rate: string }> {
  return rows.map((row) => ({ currency: row.currency, date: row.date, rate: normalizeRate(row.rate) }));
}
