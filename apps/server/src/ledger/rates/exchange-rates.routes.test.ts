import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUnthrottledTenant, startTestStack, type TestStack, type TestTenant } from '../../../test/harness.ts';
import { newUuid, parseId } from '../../platform/ids.ts';
import { tenantContextOf } from '../../tenancy/tenancy.service.ts';
import { callPostEntries } from '../journal/journal.store.ts';
import { countEntries, createBooks, line, post, report, type TestBooks } from '../ledger.test-support.ts';
import { toBaseMinor } from '../money.ts';

/**
 * Several currencies: rates recorded per entity and date (one, or an import), foreign lines
 * converted at the line's own rate or the table's rate on or before the entry date, an
 * explicit rounding line when the converted lines miss by a cent, reversals that mirror it,
 * base-currency reports that balance and tie to the journal with the rates and a
 * remeasurement, the database refusing a base amount that does not follow from its rate,
 * and another firm's 404.
 */
let stack: TestStack;
let firm: TestTenant;
let other: TestTenant;
let books: TestBooks;

beforeAll(async () => {
  stack = await startTestStack();
  firm = await createUnthrottledTenant(stack.app, 'Currencies');
  other = await createUnthrottledTenant(stack.app, 'Currencies Other');
  books = await createBooks(stack, firm);
});

afterAll(async () => {
  await stack?.close();
});

async function putRates(target: TestBooks, rates: object[], auth = firm.auth) {
  return await stack.app.inject({
    method: 'PUT',
    url: `/v1/entities/${target.entityId}/exchange-rates`,
    headers: auth,
    payload: { rates, source: 'import' },
  });
}

interface PostedLine {
  accountId: string;
  side: string;
  amountMinor: number;
  currency: string;
  exchangeRate: string | null;
  baseAmountMinor: number;
  role: string;
}

describe('toBaseMinor', () => {
  it('rounds half away from zero, across exponents', () => {
    expect(toBaseMinor(10_000n, '1.00005', 2, 2)).toBe(10_001n);
    expect(toBaseMinor(3_333n, '1.00005', 2, 2)).toBe(3_333n);
    expect(toBaseMinor(1_000n, '0.006543', 0, 2)).toBe(654n);
    expect(toBaseMinor(1_005n, '1', 3, 2)).toBe(101n);
    expect(toBaseMinor(1_004n, '1', 3, 2)).toBe(100n);
  });
});

describe('exchange rates', () => {
  it('records one rate or an import, replaces a date, lists by currency and date', async () => {
    const own = await createBooks(stack, firm);
    expect((await putRates(own, [{ currency: 'EUR', date: '2026-03-01', rate: '1.0800' }])).statusCode).toBe(200);
    const imported = await putRates(own, [
      { currency: 'EUR', date: '2026-03-01', rate: '1.0837' },
      { currency: 'GBP', date: '2026-03-01', rate: '1.27' },
      { currency: 'EUR', date: '2026-03-31', rate: '1.1' },
    ]);
    expect(imported.json()).toEqual({ recorded: 3 });
    const listed = await stack.app.inject({
      method: 'GET',
      url: `/v1/entities/${own.entityId}/exchange-rates?limit=2`,
      headers: firm.auth,
    });
    const page = listed.json<{
      baseCurrency: string;
      items: Array<{ currency: string; rate: string }>;
      nextCursor: string;
    }>();
    expect(page.baseCurrency).toBe('USD');
    expect(page.items.map((item) => [item.currency, item.rate])).toEqual([
      ['EUR', '1.0837'],
      ['EUR', '1.1'],
    ]);
    const rest = await stack.app.inject({
      method: 'GET',
      url: `/v1/entities/${own.entityId}/exchange-rates?limit=2&cursor=${page.nextCursor}`,
      headers: firm.auth,
    });
    expect(rest.json<{ items: Array<{ currency: string }> }>().items.map((item) => item.currency)).toEqual(['GBP']);
  });

  it('refuses a rate for the base currency, an unknown currency and a zero rate, recording none', async () => {
    const own = await createBooks(stack, firm);
    const cases: Array<[object, string]> = [
      [{ currency: 'USD', date: '2026-03-01', rate: '1' }, 'LEDGER_RATE_CURRENCY_IS_BASE'],
      [{ currency: 'XXQ', date: '2026-03-01', rate: '1' }, 'LEDGER_CURRENCY_UNKNOWN'],
      [{ currency: 'EUR', date: '2026-03-01', rate: '0.000' }, 'LEDGER_EXCHANGE_RATE_INVALID'],
      [{ currency: 'EUR', date: '2026-02-30', rate: '1' }, 'LEDGER_DATE_INVALID'],
    ];
    for (const [bad, code] of cases) {
      const response = await putRates(own, [{ currency: 'GBP', date: '2026-03-01', rate: '1.2' }, bad]);
      expect(response.statusCode, response.body).toBe(422);
      expect(response.json()).toMatchObject({ code });
    }
    const listed = await stack.app.inject({
      method: 'GET',
      url: `/v1/entities/${own.entityId}/exchange-rates`,
      headers: firm.auth,
    });
    expect(listed.json<{ items: unknown[] }>().items).toEqual([]);
  });
});

describe('posting in a foreign currency', () => {
  it('converts at the rate on or before the date and books the rounding difference to the rounding account', async () => {
    await putRates(books, [{ currency: 'EUR', date: '2026-03-01', rate: '1.00005' }]);
    const response = await post(stack, books, {
      date: '2026-03-05',
      lines: [
        line(books.accounts['1020'], 'debit', 33_33, 'EUR'),
        line(books.accounts['1020'], 'debit', 33_33, 'EUR'),
        line(books.accounts['1020'], 'debit', 33_34, 'EUR'),
        line(books.accounts['4000'], 'credit', 100_00, 'EUR'),
      ],
    });
    expect(response.statusCode, response.body).toBe(201);
    const lines = response.json<{ lines: PostedLine[] }>().lines;
    expect(lines.map((posted) => [posted.exchangeRate, posted.baseAmountMinor, posted.role])).toEqual([
      ['1.00005', 33_33, 'regular'],
      ['1.00005', 33_33, 'regular'],
      ['1.00005', 33_34, 'regular'],
      ['1.00005', 100_01, 'regular'],
      ['1', 1, 'fx_rounding'],
    ]);
    expect(lines[4]).toMatchObject({
      accountId: books.accounts['7900'],
      side: 'debit',
      amountMinor: 0,
      currency: 'USD',
    });
    const id = response.json<{ id: string }>().id;
    const read = await stack.app.inject({
      method: 'GET',
      url: `/v1/entities/${books.entityId}/journal-entries/${id}`,
      headers: firm.auth,
    });
    expect(read.json<{ lines: PostedLine[] }>().lines).toEqual(lines);

    const reversal = await stack.app.inject({
      method: 'POST',
      url: `/v1/entities/${books.entityId}/journal-entries/${id}/reverse`,
      headers: { ...firm.auth, 'idempotency-key': randomUUID() },
      payload: {},
    });
    expect(reversal.statusCode, reversal.body).toBe(201);
    const reversed = reversal.json<{ lines: PostedLine[] }>().lines;
    expect(reversed.at(-1)).toMatchObject({ role: 'fx_rounding', side: 'credit', baseAmountMinor: 1 });
  });

  it('uses the rate given on a line, and refuses a line with no rate anywhere, writing nothing', async () => {
    const own = await createBooks(stack, firm);
    const given = await post(stack, own, {
      date: '2026-04-02',
      lines: [
        { ...line(own.accounts['1020'], 'debit', 500_00, 'GBP'), exchangeRate: '1.25' },
        { ...line(own.accounts['4000'], 'credit', 500_00, 'GBP'), exchangeRate: '1.25' },
      ],
    });
    expect(given.statusCode, given.body).toBe(201);
    expect(given.json<{ lines: PostedLine[] }>().lines.map((posted) => posted.baseAmountMinor)).toEqual([
      625_00, 625_00,
    ]);
    const missing = await post(stack, own, {
      date: '2026-04-02',
      lines: [line(own.accounts['1020'], 'debit', 1_00, 'CHF'), line(own.accounts['4000'], 'credit', 1_00, 'CHF')],
    });
    expect(missing.statusCode).toBe(422);
    expect(missing.json()).toMatchObject({
      code: 'LEDGER_EXCHANGE_RATE_MISSING',
      detail: expect.stringContaining('CHF'),
    });
    const badRate = await post(stack, own, {
      date: '2026-04-02',
      lines: [
        { ...line(own.accounts['1010'], 'debit', 1_00), exchangeRate: '1.5' },
        line(own.accounts['4000'], 'credit', 1_00),
      ],
    });
    expect(badRate.json()).toMatchObject({ code: 'LEDGER_EXCHANGE_RATE_INVALID' });
    expect(await countEntries(stack, own)).toBe(1);
  });

  it('is refused by the database when a base amount does not follow from its rate', async () => {
    const record = await stack.platform.tenancy.getTenant(parseId('tenant', firm.id) ?? '');
    if (!record) throw new Error('tenant missing');
    const entityId = parseId('entity', books.entityId) ?? '';
    const userId = await stack.platform.scopes.run(
      tenantContextOf(record),
      async (db) => (await db.query<{ id: string }>('select id from users limit 1')).rows[0]?.id ?? '',
    );
    const account = (number: string) => parseId('account', books.accounts[number] ?? '') ?? '';
    const euroLine = (lineNo: number, number: string, side: 'debit' | 'credit', baseAmountMinor: bigint) => ({
      lineNo,
      accountId: account(number),
      side,
      amountMinor: 100_00n,
      currency: 'EUR',
      exponent: 2,
      memo: null,
      exchangeRate: '1.5',
      baseAmountMinor,
      role: 'regular' as const,
    });
    const attempt = stack.platform.scopes.run(tenantContextOf(record), (db) =>
      callPostEntries(db, entityId, userId, new Date(), true, [
        {
          id: newUuid(),
          date: '2026-03-06',
          kind: 'standard',
          entryClass: 'unadjusted',
          memo: '',
          reversesId: null,
          allowInactive: false,
          lines: [euroLine(1, '1020', 'debit', 100_00n), euroLine(2, '4000', 'credit', 100_00n)],
        },
      ]),
    );
    await expect(attempt).rejects.toMatchObject({ code: 'CH005', message: 'LEDGER_BASE_AMOUNT_INVALID' });
  });
});

describe('reports in the base currency', () => {
  it('balance and tie to the journal, with the rates used and a remeasurement at the latest rate', async () => {
    await putRates(books, [{ currency: 'EUR', date: '2026-03-31', rate: '1.1' }]);
    const posted = await post(stack, books, {
      date: '2026-03-10',
      lines: [
        line(books.accounts['1020'], 'debit', 1_000_00, 'EUR'),
        line(books.accounts['3000'], 'credit', 1_000_00, 'EUR'),
      ],
    });
    expect(posted.statusCode, posted.body).toBe(201);
    const body = (await report(stack, books, 'trial-balance', 'asOf=2026-03-31&view=base&verify=true')).json<{
      currencies: Array<{ currency: string; totals: { adjusted: { debitMinor: number; creditMinor: number } } }>;
      translation: {
        baseCurrency: string;
        rates: Array<{ currency: string; date: string; rate: string }>;
        remeasurement: Array<{
          account: { number: string };
          currency: string;
          balanceMinor: number;
          postedBaseMinor: number;
          remeasuredBaseMinor: number;
          differenceMinor: number;
        }>;
      };
      checks: { balanced: boolean; tiesToJournal: boolean };
    }>();
    expect(body.checks).toEqual({ balanced: true, tiesToJournal: true });
    expect(body.currencies.map((section) => section.currency)).toEqual(['USD']);
    const totals = body.currencies[0]?.totals.adjusted;
    expect(totals?.debitMinor).toBe(totals?.creditMinor);
    expect(body.translation.rates).toEqual([{ currency: 'EUR', date: '2026-03-31', rate: '1.1' }]);
    // 1020 holds 100.00 EUR net of the reversed entry plus 1,000.00 EUR posted at 1.00005.
    expect(body.translation.remeasurement).toEqual([
      expect.objectContaining({
        account: expect.objectContaining({ number: '1020' }),
        currency: 'EUR',
        balanceMinor: 1_000_00,
        postedBaseMinor: 1_000_05,
        remeasuredBaseMinor: 1_100_00,
        differenceMinor: 99_95,
      }),
    ]);
    for (const [name, query] of [
      ['balance-sheet', 'asOf=2026-03-31'],
      ['income-statement', 'from=2026-01-01&to=2026-03-31'],
    ]) {
      const statement = await report(stack, books, name ?? '', `${query}&view=base&verify=true`);
      expect(statement.json<{ checks: object }>().checks).toEqual({ balanced: true, tiesToJournal: true });
    }
  });

  it("gives another firm a 404 for the rates and base reports of this firm's entity", async () => {
    for (const probe of [
      { method: 'GET' as const, url: `/v1/entities/${books.entityId}/exchange-rates` },
      {
        method: 'PUT' as const,
        url: `/v1/entities/${books.entityId}/exchange-rates`,
        payload: { rates: [{ currency: 'EUR', date: '2026-03-01', rate: '9' }] },
      },
      { method: 'GET' as const, url: `/v1/entities/${books.entityId}/reports/trial-balance?view=base` },
    ]) {
      const response = await stack.app.inject({ ...probe, headers: other.auth });
      expect(response.statusCode, probe.url).toBe(404);
      expect(response.json()).toMatchObject({ code: 'ENTITY_NOT_FOUND' });
    }
  });
});
