import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUnthrottledTenant, startTestStack, type TestStack, type TestTenant } from '../../../test/harness.ts';
import { addMember } from '../../identity/identity.test-support.ts';
import { createBooks, type TestBooks } from '../ledger.test-support.ts';

/**
 * Exchange rates imported from a CSV file: the file's rates are recorded (same date replaces)
 * and audited once; a file with any bad row is refused with every bad row named by its line
 * and nothing recorded; an unreadable file is refused; a retry with the same Idempotency-Key
 * answers the first result without recording or auditing again; roles the access table
 * denies get 403, a staff user reaches only an assigned entity, and another firm gets 404.
 */
let stack: TestStack;
let firm: TestTenant;
let other: TestTenant;

beforeAll(async () => {
  stack = await startTestStack();
  firm = await createUnthrottledTenant(stack.app, 'Rate Import');
  other = await createUnthrottledTenant(stack.app, 'Rate Import Other');
});

afterAll(async () => {
  await stack?.close();
});

async function importCsv(
  books: TestBooks,
  csv: string,
  options: { auth?: Record<string, string>; key?: string; contentType?: string } = {},
) {
  return await stack.app.inject({
    method: 'POST',
    url: `/v1/entities/${books.entityId}/exchange-rates/import`,
    headers: {
      ...(options.auth ?? firm.auth),
      'content-type': options.contentType ?? 'text/csv',
      ...(options.key === undefined ? {} : { 'idempotency-key': options.key }),
    },
    payload: csv,
  });
}

async function listRates(books: TestBooks, auth = firm.auth) {
  const response = await stack.app.inject({
    method: 'GET',
    url: `/v1/entities/${books.entityId}/exchange-rates`,
    headers: auth,
  });
  expect(response.statusCode, response.body).toBe(200);
  return response
    .json<{ items: Array<{ currency: string; date: string; rate: string; source: string }> }>()
    .items.map((rate) => [rate.currency, rate.date, rate.rate, rate.source]);
}

async function importEvents(books: TestBooks) {
  const response = await stack.app.inject({
    method: 'GET',
    url: `/v1/audit/events?action=exchange_rate.import&entity=${books.entityId}`,
    headers: firm.auth,
  });
  expect(response.statusCode, response.body).toBe(200);
  return response.json<{ items: Array<{ actor: { kind: string }; summary: Record<string, unknown> }> }>().items;
}

describe('POST /v1/entities/{id}/exchange-rates/import', () => {
  it('records every rate of the file, replacing a recorded date, and audits the import once', async () => {
    const books = await createBooks(stack, firm);
    const entered = await stack.app.inject({
      method: 'PUT',
      url: `/v1/entities/${books.entityId}/exchange-rates`,
      headers: firm.auth,
      payload: { rates: [{ currency: 'EUR', date: '2026-03-01', rate: '1.05' }] },
    });
    expect(entered.statusCode, entered.body).toBe(200);
    // A spreadsheet export: byte-order mark, CRLF, columns in another order, a blank line, a quoted cell.
    const csv =
      '\ufeffCurrency,Date,Rate\r\nEUR,2026-03-01,1.0837\r\n\r\nGBP,2026-03-01,"1.27"\r\nJPY,2026-03-02,0.006543\r\n';
    const response = await importCsv(books, csv);
    expect(response.statusCode, response.body).toBe(200);
    expect(response.json()).toEqual({ recorded: 3 });
    expect(await listRates(books)).toEqual([
      ['EUR', '2026-03-01', '1.0837', 'import'],
      ['GBP', '2026-03-01', '1.27', 'import'],
      ['JPY', '2026-03-02', '0.006543', 'import'],
    ]);
    const events = await importEvents(books);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ actor: { kind: 'user' }, summary: { format: 'csv', rates: 3 } });
    const verified = await stack.app.inject({ method: 'GET', url: '/v1/audit/verify', headers: firm.auth });
    expect(verified.json()).toMatchObject({ ok: true });
  });

  it('refuses a file with bad rows, naming each row and what is wrong, and records none of it', async () => {
    const books = await createBooks(stack, firm);
    const csv = [
      'date,currency,rate',
      '2026-03-01,EUR,1.08', // row 2: good
      '2026-02-30,GBP,1.27', // row 3: no such date
      '2026-03-01,XXQ,1.5', // row 4: unknown currency
      '2026-03-01,CHF,0', // row 5: zero rate
      '2026-03-02,CHF,-1.1', // row 6: negative rate
      '2026-03-01,EUR,1.09', // row 7: EUR on 2026-03-01 again
      '2026-03-01,USD,1', // row 8: the base currency
      '2026-03-03,CAD,', // row 9: no rate
    ].join('\n');
    const response = await importCsv(books, csv);
    expect(response.statusCode, response.body).toBe(422);
    expect(response.headers['content-type']).toContain('application/problem+json');
    const problem = response.json<{
      code: string;
      detail: string;
      rows: Array<{ row: number; errors: Array<{ column: string | null; code: string }> }>;
    }>();
    expect(problem.code).toBe('LEDGER_RATES_IMPORT_ROWS_INVALID');
    expect(problem.detail).toContain('Rows 3, 4, 5, 6, 7, 8, 9 are invalid');
    expect(problem.rows.map((row) => [row.row, row.errors.map((error) => [error.column, error.code])])).toEqual([
      [3, [['date', 'LEDGER_DATE_INVALID']]],
      [4, [['currency', 'LEDGER_CURRENCY_UNKNOWN']]],
      [5, [['rate', 'LEDGER_EXCHANGE_RATE_INVALID']]],
      [6, [['rate', 'LEDGER_EXCHANGE_RATE_INVALID']]],
      [7, [[null, 'LEDGER_RATE_DUPLICATE']]],
      [8, [['currency', 'LEDGER_RATE_CURRENCY_IS_BASE']]],
      [9, [['rate', 'LEDGER_EXCHANGE_RATE_INVALID']]],
    ]);
    expect(await listRates(books)).toEqual([]);
    expect(await importEvents(books)).toEqual([]);

    const single = await importCsv(books, 'date,currency,rate\n2026-03-01,EUR,1.08\n2026-13-01,EUR,1.1\n');
    expect(single.json()).toMatchObject({
      code: 'LEDGER_RATES_IMPORT_ROWS_INVALID',
      detail: expect.stringContaining('Row 3 is invalid'),
    });
    expect(await listRates(books)).toEqual([]);
  });

  it('refuses a file it cannot read, and a body that is not CSV', async () => {
    const books = await createBooks(stack, firm);
    const cases: Array<[string, string]> = [
      ['', 'empty'],
      ['date,currency,rate\n', 'no rates'],
      ['date,currency\n2026-03-01,EUR\n', 'lacks rate'],
      ['date,currency,rate,note\n2026-03-01,EUR,1.1,x\n', 'Unknown column'],
      ['date,currency,rate\n2026-03-01,EUR,1.1,extra\n', 'Invalid Record Length'],
      ['date,currency,rate\n"2026-03-01,EUR,1.1\n', 'Quote Not Closed'],
    ];
    for (const [csv, detail] of cases) {
      const response = await importCsv(books, csv);
      expect(response.statusCode, csv).toBe(400);
      expect(response.json(), csv).toMatchObject({
        code: 'LEDGER_RATES_CSV_INVALID',
        detail: expect.stringContaining(detail),
      });
    }
    const json = await importCsv(books, JSON.stringify({ rates: [] }), { contentType: 'application/json' });
    expect(json.statusCode).toBe(400);
    expect(json.json()).toMatchObject({ code: 'REQUEST_VALIDATION_FAILED' });
    expect(await listRates(books)).toEqual([]);
  });

  it('answers a retry with the same Idempotency-Key from the first call, and refuses the key for other content', async () => {
    const books = await createBooks(stack, firm);
    const key = randomUUID();
    const csv = 'date,currency,rate\n2026-04-01,EUR,1.1\n2026-04-01,GBP,1.3\n';
    const [first, second] = await Promise.all([importCsv(books, csv, { key }), importCsv(books, csv, { key })]);
    expect([first?.statusCode, second?.statusCode]).toEqual([200, 200]);
    expect(first?.json()).toEqual({ recorded: 2 });
    expect(second?.json()).toEqual({ recorded: 2 });
    expect([first?.headers['idempotent-replayed'], second?.headers['idempotent-replayed']].sort()).toEqual([
      'true',
      undefined,
    ]);
    expect(await importEvents(books)).toHaveLength(1);
    const reused = await importCsv(books, 'date,currency,rate\n2026-04-01,EUR,1.2\n', { key });
    expect(reused.statusCode).toBe(409);
    expect(reused.json()).toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
    expect(await listRates(books)).toEqual([
      ['EUR', '2026-04-01', '1.1', 'import'],
      ['GBP', '2026-04-01', '1.3', 'import'],
    ]);
  });

  it('lets the roles of ledger.rates.write import, and a staff user only into an assigned entity', async () => {
    const assigned = await createBooks(stack, firm);
    const unassigned = await createBooks(stack, firm);
    const csv = 'date,currency,rate\n2026-05-01,EUR,1.1\n';
    for (const role of ['auditor', 'client'] as const) {
      const member = await addMember(stack, firm, role, role === 'client' ? [assigned.entityId] : []);
      const refused = await importCsv(assigned, csv, { auth: member.auth });
      expect(refused.statusCode, role).toBe(403);
      expect(refused.json()).toMatchObject({ code: 'AUTH_FORBIDDEN' });
    }
    const manager = await addMember(stack, firm, 'manager');
    expect((await importCsv(unassigned, csv, { auth: manager.auth })).statusCode).toBe(200);
    const staff = await addMember(stack, firm, 'staff', [assigned.entityId]);
    expect(
      (await importCsv(assigned, 'date,currency,rate\n2026-05-02,EUR,1.2\n', { auth: staff.auth })).statusCode,
    ).toBe(200);
    const elsewhere = await importCsv(unassigned, 'date,currency,rate\n2026-05-03,EUR,9\n', { auth: staff.auth });
    expect(elsewhere.statusCode).toBe(404);
    expect(elsewhere.json()).toMatchObject({ code: 'ENTITY_NOT_FOUND' });
    // An unreadable file tells a user who may not see the entity nothing more.
    const unreadable = await importCsv(unassigned, 'date,currency\n"unclosed\n', { auth: staff.auth });
    expect(unreadable.statusCode).toBe(404);
    expect(unreadable.json()).toMatchObject({ code: 'ENTITY_NOT_FOUND' });
    expect(await listRates(assigned)).toEqual([['EUR', '2026-05-02', '1.2', 'import']]);
    expect(await listRates(unassigned)).toEqual([['EUR', '2026-05-01', '1.1', 'import']]);
  });

  it("gives another firm a 404 for this firm's entity and records nothing in either firm", async () => {
    const books = await createBooks(stack, firm);
    const otherBooks = await createBooks(stack, other);
    const response = await importCsv(books, 'date,currency,rate\n2026-06-01,EUR,7\n', { auth: other.auth });
    expect(response.statusCode).toBe(404);
    expect(response.json()).toMatchObject({ code: 'ENTITY_NOT_FOUND' });
    const unreadable = await importCsv(books, 'date,currency\n"unclosed\n', { auth: other.auth });
    expect(unreadable.statusCode).toBe(404);
    expect(unreadable.json()).toMatchObject({ code: 'ENTITY_NOT_FOUND' });
    expect(await listRates(books)).toEqual([]);
    expect(await listRates(otherBooks, other.auth)).toEqual([]);
  });
});
