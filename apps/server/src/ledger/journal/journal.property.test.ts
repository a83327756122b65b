import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUnthrottledTenant, startTestStack, type TestStack, type TestTenant } from '../../../test/harness.ts';
import { countEntries, createBooks, line, post, report, type TestBooks } from '../ledger.test-support.ts';

/**
 * Property-based tests (fast-check) over HTTP against a real database: any batch of valid
 * entries keeps every trial balance at zero net and every report consistent with the
 * journal; any invalid entry is refused with its code and changes nothing; any reversal
 * nets to zero. Runs are few but each is a full post-and-report round trip.
 */
let stack: TestStack;
let firm: TestTenant;
let otherFirm: TestTenant;

beforeAll(async () => {
  stack = await startTestStack();
  firm = await createUnthrottledTenant(stack.app, 'Properties');
  otherFirm = await createUnthrottledTenant(stack.app, 'Properties Other');
});

afterAll(async () => {
  await stack?.close();
});

const numbers = [
  '1010',
  '1020',
  '1100',
  '1200',
  '1500',
  '2000',
  '2100',
  '3000',
  '4000',
  '4100',
  '5000',
  '6110',
  '6300',
  '6800',
  '7000',
];
const currencies = ['USD', 'EUR', 'JPY'] as const;
const dateArb = fc
  .date({ min: new Date('2025-01-01T00:00:00Z'), max: new Date('2026-12-31T00:00:00Z'), noInvalidDate: true })
  .map((date) => date.toISOString().slice(0, 10));
const amountArb = fc.oneof(
  fc.integer({ min: 1, max: 10_000_000 }),
  fc.bigInt({ min: 2n ** 53n, max: 2n ** 56n }).map((value) => value.toString()),
);
const pairArb = fc.record({
  debit: fc.constantFrom(...numbers),
  credit: fc.constantFrom(...numbers),
  amount: amountArb,
  currency: fc.constantFrom(...currencies),
});
const entryArb = fc.record({ date: dateArb, pairs: fc.array(pairArb, { minLength: 1, maxLength: 4 }) });

type EntrySpec = {
  date: string;
  pairs: Array<{ debit: string; credit: string; amount: number | string; currency: string }>;
};

/** Foreign lines carry their rate; EUR's has three decimals more than a cent can show, so rounding occurs. */
const rates: Record<string, string | undefined> = { EUR: '1.0837', JPY: '0.006543' };

function entryPayload(books: TestBooks, spec: EntrySpec) {
  const withRate = (currency: string) => (rates[currency] === undefined ? {} : { exchangeRate: rates[currency] });
  return {
    date: spec.date,
    memo: 'generated',
    lines: spec.pairs.flatMap((pair) => [
      { ...line(books.accounts[pair.debit], 'debit', pair.amount, pair.currency), ...withRate(pair.currency) },
      { ...line(books.accounts[pair.credit], 'credit', pair.amount, pair.currency), ...withRate(pair.currency) },
    ]),
  };
}

interface Column {
  debitMinor: number | string;
  creditMinor: number | string;
}
interface TrialBalanceBody {
  currencies: Array<{
    currency: string;
    rows: Array<
      Record<'unadjusted' | 'adjustments' | 'adjusted' | 'comparative', Column> & { account: { number: string } }
    >;
    totals: Record<string, Column>;
  }>;
  checks: { balanced: boolean; tiesToJournal: boolean };
}

async function trialBalance(books: TestBooks, asOf: string): Promise<TrialBalanceBody> {
  return (await report(stack, books, 'trial-balance', `asOf=${asOf}&verify=true`)).json<TrialBalanceBody>();
}

/** One column of a trial balance by currency and account number, leaving out zero rows. */
function columnByAccount(body: TrialBalanceBody, column: 'adjusted' | 'comparative'): Record<string, string> {
  const figures: Record<string, string> = {};
  for (const section of body.currencies) {
    for (const row of section.rows) {
      const { debitMinor, creditMinor } = row[column];
      if (BigInt(debitMinor) === 0n && BigInt(creditMinor) === 0n) continue;
      figures[`${section.currency} ${row.account.number}`] = `${debitMinor}/${creditMinor}`;
    }
  }
  return figures;
}

function expectNetZero(body: TrialBalanceBody) {
  expect(body.checks).toEqual({ balanced: true, tiesToJournal: true });
  for (const section of body.currencies) {
    for (const column of ['unadjusted', 'adjustments', 'adjusted', 'comparative']) {
      const total = section.totals[column];
      expect(BigInt(total?.debitMinor ?? -1), `${section.currency} ${column}`).toBe(BigInt(total?.creditMinor ?? -2));
    }
  }
}

/** Pages through one account's general ledger; the running balance must land on the closing one. */
async function expectLedgerTies(books: TestBooks, number: string, currency: string) {
  let cursor: string | null = null;
  let pages = 0;
  let last: { running: bigint; closing: bigint; balanced: boolean } | null = null;
  do {
    const query: string = `accountId=${books.accounts[number]}&currency=${currency}&from=2025-01-01&to=2026-12-31&limit=3${cursor ? `&cursor=${cursor}` : ''}`;
    const page = (await report(stack, books, 'general-ledger', query)).json<{
      openingBalanceMinor: number | string;
      closingBalanceMinor: number | string;
      items: Array<{ runningBalanceMinor: number | string }>;
      nextCursor: string | null;
      checks: { balanced: boolean };
    }>();
    const running = page.items.at(-1)?.runningBalanceMinor ?? page.openingBalanceMinor;
    last = { running: BigInt(running), closing: BigInt(page.closingBalanceMinor), balanced: page.checks.balanced };
    cursor = page.nextCursor;
    pages++;
  } while (cursor && pages < 100);
  expect(last?.balanced).toBe(true);
  expect(last?.running).toBe(last?.closing);
}

describe('valid entries', () => {
  it('keep every trial balance at zero net and every report tied to the journal', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(entryArb, { minLength: 1, maxLength: 25 }), dateArb, async (specs, asOf) => {
        const books = await createBooks(stack, firm);
        const response = await stack.app.inject({
          method: 'POST',
          url: `/v1/entities/${books.entityId}/journal-entries/batch`,
          headers: { ...firm.auth, 'idempotency-key': randomUUID() },
          payload: { entries: specs.map((spec) => entryPayload(books, spec)) },
        });
        expect(response.statusCode).toBe(201);
        for (const date of [asOf, '2026-12-31', '2025-06-15', '2025-06-20'])
          expectNetZero(await trialBalance(books, date));
        // The two dates of one report are read together; each column is still its own date's.
        const compared = (
          await report(stack, books, 'trial-balance', `asOf=${asOf}&compareAsOf=2025-06-20`)
        ).json<TrialBalanceBody>();
        expect(columnByAccount(compared, 'comparative')).toEqual(
          columnByAccount(await trialBalance(books, '2025-06-20'), 'adjusted'),
        );
        expect(columnByAccount(compared, 'adjusted')).toEqual(
          columnByAccount(await trialBalance(books, asOf), 'adjusted'),
        );
        // In the base currency too: every entry's rounding line makes the translated books net to zero.
        const base = (await report(stack, books, 'trial-balance', `asOf=2026-12-31&view=base&verify=true`)).json<
          TrialBalanceBody & { translation: { baseCurrency: string } }
        >();
        expectNetZero(base);
        expect(base.currencies.map((section) => section.currency)).toEqual(base.currencies.length === 0 ? [] : ['USD']);
        const sheet = (await report(stack, books, 'balance-sheet', `asOf=${asOf}&verify=true`)).json<{
          checks: object;
        }>();
        expect(sheet.checks).toEqual({ balanced: true, tiesToJournal: true });
        const income = (await report(stack, books, 'income-statement', `from=2025-01-01&to=${asOf}&verify=true`)).json<{
          checks: object;
        }>();
        expect(income.checks).toEqual({ balanced: true, tiesToJournal: true });
        for (const currency of currencies) await expectLedgerTies(books, '1010', currency);
      }),
      { numRuns: 12 },
    );
  });
});

type Breakage =
  | 'unbalanced'
  | 'single-line'
  | 'exponent'
  | 'beyond-bigint'
  | 'inactive'
  | 'sibling-account'
  | 'foreign-account'
  | 'closed-period';
const expectedCode: Record<Breakage, string> = {
  unbalanced: 'LEDGER_ENTRY_UNBALANCED',
  'single-line': 'LEDGER_ENTRY_TOO_FEW_LINES',
  exponent: 'LEDGER_CURRENCY_EXPONENT_MISMATCH',
  'beyond-bigint': 'LEDGER_AMOUNT_OUT_OF_RANGE',
  inactive: 'LEDGER_ACCOUNT_INACTIVE',
  'sibling-account': 'LEDGER_ACCOUNT_UNKNOWN',
  'foreign-account': 'LEDGER_ACCOUNT_UNKNOWN',
  'closed-period': 'LEDGER_PERIOD_CLOSED',
};

describe('invalid entries', () => {
  it('are refused with a clear code and change nothing', async () => {
    const books = await createBooks(stack, firm);
    const sibling = await createBooks(stack, firm);
    const foreign = await createBooks(stack, otherFirm);
    const seeded = await post(
      stack,
      books,
      entryPayload(books, {
        date: '2025-05-05',
        pairs: [{ debit: '1010', credit: '4000', amount: 777, currency: 'USD' }],
      }),
    );
    expect(seeded.statusCode).toBe(201);
    await stack.app.inject({
      method: 'PATCH',
      url: `/v1/entities/${books.entityId}/accounts/${books.accounts['6050']}`,
      headers: firm.auth,
      payload: { active: false },
    });
    await stack.app.inject({
      method: 'POST',
      url: `/v1/entities/${books.entityId}/periods/2024-12/close`,
      headers: firm.auth,
    });
    const before = await trialBalance(books, '2026-12-31');

    const breakages = Object.keys(expectedCode) as Breakage[];
    await fc.assert(
      fc.asyncProperty(entryArb, fc.constantFrom(...breakages), async (spec, breakage) => {
        const payload = entryPayload(books, spec);
        const lines: Array<Record<string, unknown>> = payload.lines;
        if (breakage === 'unbalanced')
          lines[0] = { ...lines[0], amountMinor: `${BigInt(String(lines[0]?.amountMinor)) + 1n}` };
        if (breakage === 'single-line') payload.lines = payload.lines.slice(0, 1);
        if (breakage === 'exponent') lines[0] = { ...lines[0], exponent: lines[0]?.currency === 'JPY' ? 2 : 0 };
        if (breakage === 'beyond-bigint') lines[1] = { ...lines[1], amountMinor: '9223372036854775808' };
        if (breakage === 'inactive') lines[0] = { ...lines[0], accountId: books.accounts['6050'] };
        if (breakage === 'sibling-account') lines[1] = { ...lines[1], accountId: sibling.accounts['1010'] };
        if (breakage === 'foreign-account') lines[0] = { ...lines[0], accountId: foreign.accounts['1010'] };
        if (breakage === 'closed-period') payload.date = '2024-12-15';
        const response = await post(stack, books, payload);
        expect(response.statusCode, response.body).toBeGreaterThanOrEqual(400);
        expect(response.json<{ code: string }>().code).toBe(expectedCode[breakage]);
      }),
      { numRuns: 40 },
    );
    expect(await countEntries(stack, books)).toBe(1);
    expect(await trialBalance(books, '2026-12-31')).toEqual(before);
  });
});

describe('reversal', () => {
  it('nets to zero: the trial balance after an entry and its reversal equals the one before', async () => {
    const books = await createBooks(stack, firm);
    await fc.assert(
      fc.asyncProperty(entryArb, async (spec) => {
        const before = await trialBalance(books, '2026-12-31');
        const posted = await post(stack, books, entryPayload(books, spec));
        expect(posted.statusCode).toBe(201);
        const reversal = await stack.app.inject({
          method: 'POST',
          url: `/v1/entities/${books.entityId}/journal-entries/${posted.json<{ id: string }>().id}/reverse`,
          headers: { ...firm.auth, 'idempotency-key': randomUUID() },
          payload: {},
        });
        expect(reversal.statusCode).toBe(201);
        const after = await trialBalance(books, '2026-12-31');
        expectNetZero(after);
        expect(after.currencies.map((section) => section.totals)).toEqual(
          before.currencies.map((section) => section.totals),
        );
      }),
      { numRuns: 10 },
    );
  });
});
