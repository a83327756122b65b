import ExcelJS from 'exceljs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUnthrottledTenant, startTestStack, type TestStack, type TestTenant } from '../../../test/harness.ts';
import { createBooks, post, type TestBooks, twoLine } from '../ledger.test-support.ts';
import { formatDecimal } from '../money.ts';

/**
 * The statements as files: the trial balance, income statement and balance sheet as XLSX
 * (read back with exceljs) and PDF (text read back from the uncompressed content streams),
 * chosen by ?format= or by the Accept header, each figure tying to the JSON report.
 */
let stack: TestStack;
let firm: TestTenant;
let other: TestTenant;
let books: TestBooks;

const xlsxType = 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet';

beforeAll(async () => {
  stack = await startTestStack();
  firm = await createUnthrottledTenant(stack.app, 'Statements');
  other = await createUnthrottledTenant(stack.app, 'Statements Other');
  books = await createBooks(stack, firm);
  const postings: Array<[string, string, string, number]> = [
    ['2025-06-10', '1010', '3000', 25_000_00],
    ['2026-01-05', '1010', '4000', 4_250_75],
    ['2026-01-12', '6300', '1010', 1_200_00],
    ['2026-02-20', '6400', '2000', 310_10],
  ];
  for (const [date, debit, credit, amount] of postings) {
    const response = await post(stack, books, twoLine(books, date, debit, credit, amount));
    if (response.statusCode !== 201) throw new Error(response.body);
  }
});

afterAll(async () => {
  await stack?.close();
});

async function fetchReport(path: string, headers: Record<string, string> = {}) {
  return await stack.app.inject({
    method: 'GET',
    url: `/v1/entities/${books.entityId}/reports/${path}`,
    headers: { ...firm.auth, ...headers },
  });
}

async function sheetRows(buffer: Buffer): Promise<unknown[][]> {
  const workbook = new ExcelJS.Workbook();
  await workbook.xlsx.load(buffer as unknown as ArrayBuffer);
  const sheet = workbook.worksheets[0];
  if (!sheet) throw new Error('no worksheet');
  const rows: unknown[][] = [];
  sheet.eachRow((row) => {
    rows.push((row.values as unknown[]).slice(1));
  });
  return rows;
}

/** The strings drawn by the PDF's text operators, each TJ array joined into one string. */
function pdfStrings(buffer: Buffer): string[] {
  const text = buffer.toString('latin1');
  return [...text.matchAll(/\[((?:<[0-9a-f]*>\s*-?[0-9.]*\s*)+)\] TJ/g)].map((match) =>
    [...(match[1] ?? '').matchAll(/<([0-9a-f]*)>/g)]
      .map((hex) => Buffer.from(hex[1] ?? '', 'hex').toString('latin1'))
      .join(''),
  );
}

const decimal = (minor: number | string) => formatDecimal(BigInt(minor), 2);

describe('trial balance', () => {
  it('as XLSX and PDF carries every figure of the JSON report', async () => {
    const query = 'trial-balance?asOf=2026-02-28';
    const json = (await fetchReport(query)).json<{
      currencies: Array<{
        rows: Array<{
          account: { number: string; name: string };
          adjusted: { debitMinor: number; creditMinor: number };
          comparative: { debitMinor: number; creditMinor: number };
        }>;
        totals: { adjusted: { debitMinor: number; creditMinor: number } };
      }>;
    }>();
    const section = json.currencies[0];
    if (!section) throw new Error('no USD section');

    const xlsx = await fetchReport(`${query}&format=xlsx`);
    expect(xlsx.statusCode).toBe(200);
    expect(xlsx.headers['content-type']).toBe(xlsxType);
    expect(xlsx.headers['content-disposition']).toBe('attachment; filename="trial-balance-2026-02-28.xlsx"');
    const rows = await sheetRows(xlsx.rawPayload);
    expect(rows[0]).toEqual(['Trial balance']);
    for (const row of section.rows) {
      const sheetRow = rows.find((cells) => cells[0] === row.account.number);
      expect(sheetRow, row.account.number).toBeDefined();
      expect(sheetRow?.[1]).toBe(row.account.name);
      expect(sheetRow?.slice(6, 10).map(String)).toEqual(
        [
          row.adjusted.debitMinor,
          row.adjusted.creditMinor,
          row.comparative.debitMinor,
          row.comparative.creditMinor,
        ].map((minor) => String(Number(decimal(minor)))),
      );
    }
    const totalRow = rows.find((cells) => cells[1] === 'Total USD');
    expect(totalRow?.slice(6, 8)).toEqual([
      Number(decimal(section.totals.adjusted.debitMinor)),
      Number(decimal(section.totals.adjusted.creditMinor)),
    ]);

    const pdf = await fetchReport(query, { accept: 'application/pdf' });
    expect(pdf.statusCode).toBe(200);
    expect(pdf.headers['content-type']).toBe('application/pdf');
    expect(pdf.rawPayload.subarray(0, 5).toString()).toBe('%PDF-');
    const strings = pdfStrings(pdf.rawPayload);
    expect(strings).toContain('Trial balance');
    for (const row of section.rows) {
      expect(strings).toContain(row.account.name);
      expect(strings).toContain(decimal(row.adjusted.debitMinor));
      expect(strings).toContain(decimal(row.adjusted.creditMinor));
    }
    expect(strings).toContain(decimal(section.totals.adjusted.debitMinor));
  });
});

describe('income statement and balance sheet', () => {
  it('tie their XLSX and PDF totals to the JSON report', async () => {
    const income = (await fetchReport('income-statement?from=2026-01-01&to=2026-02-28')).json<{
      currencies: Array<{ netIncome: { amountMinor: number }; totalRevenue: { amountMinor: number } }>;
    }>();
    const net = income.currencies[0]?.netIncome.amountMinor ?? Number.NaN;
    const incomeXlsx = await fetchReport('income-statement?from=2026-01-01&to=2026-02-28', { accept: xlsxType });
    expect(incomeXlsx.headers['content-type']).toBe(xlsxType);
    const incomeRows = await sheetRows(incomeXlsx.rawPayload);
    expect(incomeRows.find((cells) => cells[1] === 'Net income')?.[2]).toBe(Number(decimal(net)));
    expect(incomeRows.find((cells) => cells[1] === 'Total revenue')?.[2]).toBe(
      Number(decimal(income.currencies[0]?.totalRevenue.amountMinor ?? 0)),
    );
    const incomePdf = pdfStrings(
      (await fetchReport('income-statement?from=2026-01-01&to=2026-02-28&format=pdf')).rawPayload,
    );
    expect(incomePdf).toEqual(expect.arrayContaining(['Income statement', 'Net income', decimal(net)]));

    const sheet = (await fetchReport('balance-sheet?asOf=2026-02-28')).json<{
      currencies: Array<{ totalAssets: { amountMinor: number }; totalEquity: { amountMinor: number } }>;
    }>();
    const assets = sheet.currencies[0]?.totalAssets.amountMinor ?? Number.NaN;
    const sheetRowsRead = await sheetRows((await fetchReport('balance-sheet?asOf=2026-02-28&format=xlsx')).rawPayload);
    expect(sheetRowsRead.find((cells) => cells[1] === 'Total assets')?.[2]).toBe(Number(decimal(assets)));
    expect(sheetRowsRead.find((cells) => cells[1] === 'Total liabilities and equity')?.[2]).toBe(
      Number(decimal(assets)),
    );
    const sheetPdf = pdfStrings((await fetchReport('balance-sheet?asOf=2026-02-28&format=pdf')).rawPayload);
    expect(sheetPdf).toEqual(expect.arrayContaining(['Balance sheet', 'Total assets', decimal(assets)]));
  });

  it('answers JSON to a browser-like Accept header, and CSV to text/csv', async () => {
    const json = await fetchReport('balance-sheet?asOf=2026-02-28', { accept: 'text/html, */*;q=0.8' });
    expect(json.headers['content-type']).toMatch(/^application\/json/);
    const csv = await fetchReport('balance-sheet?asOf=2026-02-28', { accept: 'text/csv' });
    expect(csv.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(csv.body.split('\r\n')[0]).toBe('currency,section,account,name,amount,comparative');
  });

  it("gives another firm a 404, not a file, for this firm's statements", async () => {
    const response = await stack.app.inject({
      method: 'GET',
      url: `/v1/entities/${books.entityId}/reports/trial-balance?format=pdf`,
      headers: other.auth,
    });
    expect(response.statusCode).toBe(404);
    expect(response.json()).toMatchObject({ code: 'ENTITY_NOT_FOUND' });
  });
});
