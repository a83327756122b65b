import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUnthrottledTenant, startTestStack, type TestStack, type TestTenant } from '../../../test/harness.ts';
import { createBooks, line, post, report, type TestBooks, twoLine } from '../ledger.test-support.ts';

/**
 * Reports over HTTP on a small, known set of books: trial balance as of month ends and
 * mid-month dates on both sides of the 15th (the two ways a partial month is read), its
 * comparative and tax-line grouping, general ledger paging with a running balance, the
 * statements with comparatives, CSV output, and another firm's 404.
 */
let stack: TestStack;
let firm: TestTenant;
let other: TestTenant;
let books: TestBooks;

beforeAll(async () => {
  stack = await startTestStack();
  firm = await createUnthrottledTenant(stack.app, 'Reports');
  other = await createUnthrottledTenant(stack.app, 'Reports Other');
  books = await createBooks(stack, firm);
  const postings: Array<[string, string, string, number]> = [
    ['2025-03-10', '1010', '3000', 50_000_00],
    ['2025-03-20', '1010', '4000', 12_000_00],
    ['2026-01-05', '1010', '4000', 1_000_00],
    ['2026-01-12', '6300', '1010', 400_00],
    ['2026-01-18', '1010', '4100', 250_00],
    ['2026-01-28', '6400', '2000', 75_00],
    ['2026-02-03', '1010', '4000', 2_000_00],
  ];
  for (const [date, debit, credit, amount] of postings) {
    const response = await post(stack, books, twoLine(books, date, debit, credit, amount));
    if (response.statusCode !== 201) throw new Error(response.body);
  }
  const rate = await stack.app.inject({
    method: 'PUT',
    url: `/v1/entities/${books.entityId}/exchange-rates`,
    headers: firm.auth,
    payload: { rates: [{ currency: 'EUR', date: '2026-01-01', rate: '1.1' }] },
  });
  if (rate.statusCode !== 200) throw new Error(rate.body);
  const euro = await post(stack, books, {
    date: '2026-01-20',
    lines: [
      line(books.accounts['1020'], 'debit', 900_00, 'EUR'),
      line(books.accounts['4900'], 'credit', 900_00, 'EUR'),
    ],
  });
  if (euro.statusCode !== 201) throw new Error(euro.body);
});

afterAll(async () => {
  await stack?.close();
});

type Column = { debitMinor: number; creditMinor: number };
interface TrialBalanceBody {
  compareAsOf: string;
  currencies: Array<{
    currency: string;
    rows: Array<{ account: { number: string }; adjusted: Column; comparative: Column }>;
    totals: Record<string, Column>;
  }>;
  taxLines: Array<{ form: string; currency: string; lines: Array<{ line: string; label: string } & Column> }> | null;
  checks: { balanced: boolean; tiesToJournal: boolean };
}

function cash(body: TrialBalanceBody): Column | undefined {
  return body.currencies
    .find((section) => section.currency === 'USD')
    ?.rows.find((row) => row.account.number === '1010')?.adjusted;
}

describe('trial balance', () => {
  const expectations: Array<[string, number]> = [
    ['2026-01-31', 50_000_00 + 12_000_00 + 1_000_00 - 400_00 + 250_00],
    ['2026-01-10', 50_000_00 + 12_000_00 + 1_000_00],
    ['2026-01-20', 50_000_00 + 12_000_00 + 1_000_00 - 400_00 + 250_00],
    ['2026-01-04', 62_000_00],
    ['2025-12-31', 62_000_00],
  ];
  for (const [asOf, expected] of expectations) {
    it(`reads cash as of ${asOf} from balances and ties to the journal`, async () => {
      const body = (await report(stack, books, 'trial-balance', `asOf=${asOf}&verify=true`)).json<TrialBalanceBody>();
      expect(body.checks).toEqual({ balanced: true, tiesToJournal: true });
      expect(cash(body)).toEqual({ debitMinor: expected, creditMinor: 0 });
    });
  }

  it('keeps currencies apart and compares with the end of the previous month', async () => {
    const body = (await report(stack, books, 'trial-balance', 'asOf=2026-01-31')).json<TrialBalanceBody>();
    expect(body.compareAsOf).toBe('2025-12-31');
    expect(body.currencies.map((section) => section.currency)).toEqual(['EUR', 'USD']);
    const usd = body.currencies.find((section) => section.currency === 'USD');
    expect(usd?.rows.find((row) => row.account.number === '1010')?.comparative).toEqual({
      debitMinor: 62_000_00,
      creditMinor: 0,
    });
    expect(usd?.totals.adjusted?.debitMinor).toBe(usd?.totals.adjusted?.creditMinor);
  });

  it('groups by the tax lines of Form 1120-S', async () => {
    const body = (
      await report(stack, books, 'trial-balance', 'asOf=2026-01-31&taxForm=1120-S')
    ).json<TrialBalanceBody>();
    const usd = body.taxLines?.find((group) => group.currency === 'USD');
    expect(usd?.form).toBe('1120-S');
    expect(usd?.lines.find((entry) => entry.line === '1a')).toMatchObject({
      label: 'Line 1a Gross receipts or sales',
      creditMinor: 12_000_00 + 1_000_00 + 250_00,
    });
    expect(usd?.lines.find((entry) => entry.line === 'L1')).toMatchObject({ debitMinor: 62_850_00 });
  });

  it('answers CSV with decimal amounts', async () => {
    const response = await report(stack, books, 'trial-balance', 'asOf=2026-01-31&format=csv');
    expect(response.headers['content-type']).toMatch(/^text\/csv/);
    const lines = response.body.trim().split('\r\n');
    expect(lines[0]).toMatch(/^currency,account,name,type,unadjusted_debit/);
    expect(lines).toContain('USD,1010,Operating checking,asset,62850.00,0.00,0.00,0.00,62850.00,0.00,62000.00,0.00');
  });
});

describe('general ledger', () => {
  it('pages through an account with a running balance that lands on the closing balance', async () => {
    const seen: Array<{ runningBalanceMinor: number; debitMinor: number; creditMinor: number }> = [];
    let cursor: string | null = null;
    let opening = 0;
    let closing = 0;
    do {
      const query: string = `accountId=${books.accounts['1010']}&from=2026-01-01&to=2026-02-28&limit=2${cursor ? `&cursor=${cursor}` : ''}`;
      const page = (await report(stack, books, 'general-ledger', query)).json<{
        openingBalanceMinor: number;
        closingBalanceMinor: number;
        items: typeof seen;
        nextCursor: string | null;
      }>();
      opening = page.openingBalanceMinor;
      closing = page.closingBalanceMinor;
      seen.push(...page.items);
      cursor = page.nextCursor;
    } while (cursor);
    expect(opening).toBe(62_000_00);
    expect(seen.map((item) => item.runningBalanceMinor)).toEqual([63_000_00, 62_600_00, 62_850_00, 64_850_00]);
    expect(closing).toBe(64_850_00);
  });

  it('refuses a tampered cursor and an account of another entity', async () => {
    const tampered = await stack.app.inject({
      method: 'GET',
      url: `/v1/entities/${books.entityId}/reports/general-ledger?accountId=${books.accounts['1010']}&cursor=bm9wZQ`,
      headers: firm.auth,
    });
    expect(tampered.json()).toMatchObject({ code: 'PAGINATION_CURSOR_INVALID' });
    const sibling = await createBooks(stack, firm);
    const foreign = await stack.app.inject({
      method: 'GET',
      url: `/v1/entities/${books.entityId}/reports/general-ledger?accountId=${sibling.accounts['1010']}`,
      headers: firm.auth,
    });
    expect(foreign.json()).toMatchObject({ code: 'ACCOUNT_NOT_FOUND' });
  });
});

describe('statements', () => {
  it('shows income for a range with the prior year as comparative', async () => {
    const body = (await report(stack, books, 'income-statement', 'from=2026-01-01&to=2026-01-31&verify=true')).json<{
      compareFrom: string;
      currencies: Array<{
        currency: string;
        netIncome: { amountMinor: number; comparativeMinor: number };
        totalRevenue: { amountMinor: number };
      }>;
      checks: object;
    }>();
    expect(body.compareFrom).toBe('2025-01-01');
    const usd = body.currencies.find((section) => section.currency === 'USD');
    expect(usd?.totalRevenue.amountMinor).toBe(1_250_00);
    expect(usd?.netIncome).toEqual({ amountMinor: 1_250_00 - 475_00, comparativeMinor: 0 });
    expect(body.checks).toEqual({ balanced: true, tiesToJournal: true });
  });

  it('balances the balance sheet with current-year earnings, in JSON and CSV', async () => {
    const body = (
      await report(stack, books, 'balance-sheet', 'asOf=2026-01-31&compareAsOf=2025-03-31&verify=true')
    ).json<{
      currencies: Array<{
        currency: string;
        totalAssets: { amountMinor: number; comparativeMinor: number };
        totalLiabilities: { amountMinor: number };
        totalEquity: { amountMinor: number };
      }>;
      checks: object;
    }>();
    expect(body.checks).toEqual({ balanced: true, tiesToJournal: true });
    const usd = body.currencies.find((section) => section.currency === 'USD');
    expect(usd?.totalAssets).toEqual({ amountMinor: 62_850_00, comparativeMinor: 62_000_00 });
    expect((usd?.totalLiabilities.amountMinor ?? 0) + (usd?.totalEquity.amountMinor ?? 0)).toBe(62_850_00);
    const csv = await report(stack, books, 'balance-sheet', 'asOf=2026-01-31&format=csv');
    expect(csv.body).toContain('USD,assets,1010,Operating checking,62850.00,');
  });
});

describe('an entity created empty, without a chart', () => {
  it('reports no rows, balanced, rather than a missing entity', async () => {
    const created = await stack.app.inject({
      method: 'POST',
      url: '/v1/entities',
      headers: firm.auth,
      payload: { name: `Empty books ${randomUUID()}` },
    });
    expect(created.statusCode).toBe(201);
    const entityId = created.json<{ id: string }>().id;
    for (const name of [
      'trial-balance?asOf=2026-01-31',
      'income-statement?to=2026-01-31',
      'balance-sheet?asOf=2026-01-31',
    ]) {
      const response = await stack.app.inject({
        method: 'GET',
        url: `/v1/entities/${entityId}/reports/${name}`,
        headers: firm.auth,
      });
      expect(response.statusCode, name).toBe(200);
      const body = response.json<{ currencies: unknown[]; checks: { balanced: boolean } }>();
      expect(body.currencies, name).toEqual([]);
      expect(body.checks.balanced, name).toBe(true);
    }
  });
});

describe('security', () => {
  it('gives another firm a 404 on every report, and refuses a report without a token', async () => {
    for (const name of [
      'trial-balance',
      'income-statement',
      'balance-sheet',
      `general-ledger?accountId=${books.accounts['1010']}`,
    ]) {
      const url = `/v1/entities/${books.entityId}/reports/${name}`;
      const response = await stack.app.inject({ method: 'GET', url, headers: other.auth });
      expect(response.statusCode, url).toBe(404);
      expect((await stack.app.inject({ method: 'GET', url })).statusCode).toBe(401);
    }
  });

  it('rejects unknown query parameters', async () => {
    const response = await stack.app.inject({
      method: 'GET',
      url: `/v1/entities/${books.entityId}/reports/trial-balance?asOf=2026-01-31&color=${randomUUID()}`,
      headers: firm.auth,
    });
    expect(response.statusCode).toBe(400);
  });
});
