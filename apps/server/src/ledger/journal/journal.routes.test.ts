import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUnthrottledTenant, startTestStack, type TestStack, type TestTenant } from '../../../test/harness.ts';
import { countEntries, createBooks, line, post, type TestBooks, twoLine } from '../ledger.test-support.ts';

/**
 * The journal over HTTP: posting, reading, listing, reversing and batching entries; every
 * refusal with its stable code and nothing written; idempotent retries; and another firm's
 * or another entity's books staying out of reach.
 */
let stack: TestStack;
let firmA: TestTenant;
let firmB: TestTenant;
let books: TestBooks;

beforeAll(async () => {
  stack = await startTestStack();
  firmA = await createUnthrottledTenant(stack.app, 'Journal A');
  firmB = await createUnthrottledTenant(stack.app, 'Journal B');
  books = await createBooks(stack, firmA);
});

afterAll(async () => {
  await stack?.close();
});

describe('posting', () => {
  it('posts a balanced entry and reads it back', async () => {
    const posted = await post(stack, books, twoLine(books, '2026-03-05', '1010', '4000', 125_00));
    expect(posted.statusCode).toBe(201);
    const entry = posted.json<{ id: string; lines: Array<{ amountMinor: number; side: string }> }>();
    expect(entry.id).toMatch(/^je_[0-9a-f]{32}$/);
    expect(entry).toMatchObject({ date: '2026-03-05', kind: 'standard', reversesId: null, reversedById: null });
    expect(entry.lines.map((l) => [l.side, l.amountMinor])).toEqual([
      ['debit', 12500],
      ['credit', 12500],
    ]);
    const read = await stack.app.inject({ method: 'GET', url: posted.headers.location as string, headers: firmA.auth });
    expect(read.statusCode).toBe(200);
    expect(read.json()).toEqual(entry);
  });

  it('carries amounts beyond 2^53 exactly as strings', async () => {
    const big = '9007199254740993';
    const own = await createBooks(stack, firmA);
    const posted = await post(stack, own, twoLine(own, '2026-03-06', '1010', '3000', big));
    expect(posted.statusCode).toBe(201);
    expect(posted.json<{ lines: Array<{ amountMinor: unknown }> }>().lines[0]?.amountMinor).toBe(big);
  });

  it('needs an Idempotency-Key', async () => {
    const response = await stack.app.inject({
      method: 'POST',
      url: `/v1/entities/${books.entityId}/journal-entries`,
      headers: firmA.auth,
      payload: twoLine(books, '2026-03-05', '1010', '4000', 1),
    });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ code: 'LEDGER_IDEMPOTENCY_KEY_REQUIRED' });
  });

  it('replays a retry and answers 409 to a reused key with other content', async () => {
    const own = await createBooks(stack, firmA);
    const first = await post(stack, own, twoLine(own, '2026-04-01', '1010', '4000', 500), 'retry-1');
    const retry = await post(stack, own, twoLine(own, '2026-04-01', '1010', '4000', 500), 'retry-1');
    expect(retry.statusCode).toBe(201);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(retry.json()).toEqual(first.json());
    const changed = await post(stack, own, twoLine(own, '2026-04-01', '1010', '4000', 501), 'retry-1');
    expect(changed.statusCode).toBe(409);
    expect(changed.json()).toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
    expect(await countEntries(stack, own)).toBe(1);
  });

  it('posts exactly once when retries race each other', async () => {
    const own = await createBooks(stack, firmA);
    const payload = twoLine(own, '2026-04-02', '1010', '4000', 700);
    const responses = await Promise.all(Array.from({ length: 8 }, () => post(stack, own, payload, 'race-key')));
    expect(responses.map((response) => response.statusCode)).toEqual(Array(8).fill(201));
    expect(new Set(responses.map((response) => response.json<{ id: string }>().id)).size).toBe(1);
    expect(await countEntries(stack, own)).toBe(1);
  });
});

describe('refusals write nothing', () => {
  const cases: Array<{ title: string; code: string; status: number; payload: (b: TestBooks) => object }> = [
    {
      title: 'an unbalanced entry',
      code: 'LEDGER_ENTRY_UNBALANCED',
      status: 422,
      payload: (b) => ({
        date: '2026-03-01',
        lines: [line(b.accounts['1010'], 'debit', 100), line(b.accounts['4000'], 'credit', 99)],
      }),
    },
    {
      title: 'a single line',
      code: 'LEDGER_ENTRY_TOO_FEW_LINES',
      status: 422,
      payload: (b) => ({ date: '2026-03-01', lines: [line(b.accounts['1010'], 'debit', 100)] }),
    },
    {
      title: 'a wrong currency exponent',
      code: 'LEDGER_CURRENCY_EXPONENT_MISMATCH',
      status: 422,
      payload: (b) => ({
        date: '2026-03-01',
        lines: [
          { ...line(b.accounts['1010'], 'debit', 100), exponent: 3 },
          { ...line(b.accounts['4000'], 'credit', 100), exponent: 3 },
        ],
      }),
    },
    {
      title: 'an unknown currency',
      code: 'LEDGER_CURRENCY_UNKNOWN',
      status: 422,
      payload: (b) => ({
        date: '2026-03-01',
        lines: [line(b.accounts['1010'], 'debit', 1, 'XXX'), line(b.accounts['4000'], 'credit', 1, 'XXX')],
      }),
    },
    {
      title: 'an amount beyond bigint',
      code: 'LEDGER_AMOUNT_OUT_OF_RANGE',
      status: 422,
      payload: (b) => twoLine(b, '2026-03-01', '1010', '4000', '9223372036854775808'),
    },
    {
      title: 'an inexact JSON number beyond 2^53',
      code: 'LEDGER_AMOUNT_OUT_OF_RANGE',
      status: 422,
      payload: (b) => twoLine(b, '2026-03-01', '1010', '4000', 2 ** 60),
    },
    {
      title: 'a zero amount',
      code: 'LEDGER_AMOUNT_OUT_OF_RANGE',
      status: 422,
      payload: (b) => twoLine(b, '2026-03-01', '1010', '4000', 0),
    },
    {
      title: 'an impossible date',
      code: 'LEDGER_DATE_INVALID',
      status: 422,
      payload: (b) => twoLine(b, '2026-02-30', '1010', '4000', 1),
    },
    {
      title: 'an account id that is no account',
      code: 'LEDGER_ACCOUNT_UNKNOWN',
      status: 422,
      payload: (b) => ({
        date: '2026-03-01',
        lines: [line('acc_nope', 'debit', 1), line(b.accounts['4000'], 'credit', 1)],
      }),
    },
    {
      title: 'an adjusting kind posted directly',
      code: 'REQUEST_VALIDATION_FAILED',
      status: 400,
      payload: (b) => ({ ...twoLine(b, '2026-03-01', '1010', '4000', 1), kind: 'adjusting' }),
    },
  ];
  for (const testCase of cases) {
    it(`refuses ${testCase.title} with ${testCase.code}`, async () => {
      const own = await createBooks(stack, firmA);
      const response = await post(stack, own, testCase.payload(own));
      expect(response.statusCode).toBe(testCase.status);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(response.json()).toMatchObject({ code: testCase.code });
      expect(await countEntries(stack, own)).toBe(0);
    });
  }

  it("refuses another entity's account, and another firm's", async () => {
    const own = await createBooks(stack, firmA);
    const sibling = await createBooks(stack, firmA);
    const foreign = await createBooks(stack, firmB);
    for (const accountId of [sibling.accounts['4000'], foreign.accounts['4000']]) {
      const response = await post(stack, own, {
        date: '2026-03-01',
        lines: [line(own.accounts['1010'], 'debit', 1), line(accountId, 'credit', 1)],
      });
      expect(response.statusCode).toBe(422);
      expect(response.json()).toMatchObject({ code: 'LEDGER_ACCOUNT_UNKNOWN' });
    }
    expect(await countEntries(stack, own)).toBe(0);
  });

  it('refuses an inactive account', async () => {
    const own = await createBooks(stack, firmA);
    const patched = await stack.app.inject({
      method: 'PATCH',
      url: `/v1/entities/${own.entityId}/accounts/${own.accounts['6500']}`,
      headers: firmA.auth,
      payload: { active: false },
    });
    expect(patched.statusCode).toBe(200);
    const response = await post(stack, own, twoLine(own, '2026-03-01', '6500', '1010', 10));
    expect(response.json()).toMatchObject({ code: 'LEDGER_ACCOUNT_INACTIVE' });
    expect(await countEntries(stack, own)).toBe(0);
  });
});

describe('reversal', () => {
  it('posts a linked reversal once, and the original shows it', async () => {
    const own = await createBooks(stack, firmA);
    const original = (await post(stack, own, twoLine(own, '2026-05-10', '6300', '1010', 2_000_00))).json<{
      id: string;
    }>();
    const url = `/v1/entities/${own.entityId}/journal-entries/${original.id}/reverse`;
    const headers = { ...firmA.auth, 'idempotency-key': 'reverse-1' };
    const reversal = await stack.app.inject({ method: 'POST', url, headers, payload: { date: '2026-05-11' } });
    expect(reversal.statusCode).toBe(201);
    const body = reversal.json<{ id: string; kind: string; reversesId: string; lines: Array<{ side: string }> }>();
    expect(body).toMatchObject({ kind: 'reversing', reversesId: original.id, date: '2026-05-11' });
    expect(body.lines.map((l) => l.side)).toEqual(['credit', 'debit']);
    const reread = await stack.app.inject({
      method: 'GET',
      url: `/v1/entities/${own.entityId}/journal-entries/${original.id}`,
      headers: firmA.auth,
    });
    expect(reread.json()).toMatchObject({ reversedById: body.id });
    const again = await stack.app.inject({
      method: 'POST',
      url,
      headers: { ...firmA.auth, 'idempotency-key': 'reverse-2' },
      payload: {},
    });
    expect(again.statusCode).toBe(409);
    expect(again.json()).toMatchObject({ code: 'LEDGER_ENTRY_ALREADY_REVERSED' });
    const ofReversal = await stack.app.inject({
      method: 'POST',
      url: `/v1/entities/${own.entityId}/journal-entries/${body.id}/reverse`,
      headers: { ...firmA.auth, 'idempotency-key': 'reverse-3' },
      payload: {},
    });
    expect(ofReversal.json()).toMatchObject({ code: 'LEDGER_ENTRY_NOT_REVERSIBLE' });
  });
});

describe('batch', () => {
  it('posts many entries atomically, or none when one is bad', async () => {
    const own = await createBooks(stack, firmA);
    const url = `/v1/entities/${own.entityId}/journal-entries/batch`;
    const good = Array.from({ length: 300 }, (_, index) => twoLine(own, '2026-06-15', '1010', '4100', index + 1));
    const ok = await stack.app.inject({
      method: 'POST',
      url,
      headers: { ...firmA.auth, 'idempotency-key': 'batch-1' },
      payload: { entries: good },
    });
    expect(ok.statusCode).toBe(201);
    expect(ok.json<{ count: number; items: unknown[] }>()).toMatchObject({ count: 300, items: expect.any(Array) });
    expect(ok.json<{ items: unknown[] }>().items).toHaveLength(300);
    const bad = [...good, { date: '2026-06-15', lines: [line(own.accounts['1010'], 'debit', 5)] }];
    const refused = await stack.app.inject({
      method: 'POST',
      url,
      headers: { ...firmA.auth, 'idempotency-key': 'batch-2' },
      payload: { entries: bad },
    });
    expect(refused.statusCode).toBe(422);
    expect(refused.json()).toMatchObject({
      code: 'LEDGER_ENTRY_TOO_FEW_LINES',
      detail: expect.stringContaining('entries[300]'),
    });
    expect(await countEntries(stack, own)).toBe(300);
  });

  it('refuses more than 1,000 entries', async () => {
    const own = await createBooks(stack, firmA);
    const entries = Array.from({ length: 1001 }, () => twoLine(own, '2026-06-15', '1010', '4100', 1));
    const response = await stack.app.inject({
      method: 'POST',
      url: `/v1/entities/${own.entityId}/journal-entries/batch`,
      headers: { ...firmA.auth, 'idempotency-key': 'too-big' },
      payload: { entries },
    });
    expect(response.statusCode).toBe(400);
    expect(await countEntries(stack, own)).toBe(0);
  });
});

describe('cross-tenant', () => {
  it("gives firm B a 404 for firm A's entity, entries and reversal", async () => {
    const posted = (await post(stack, books, twoLine(books, '2026-03-07', '1010', '4000', 1))).json<{ id: string }>();
    const base = `/v1/entities/${books.entityId}`;
    const probes = [
      { method: 'GET' as const, url: `${base}/journal-entries` },
      { method: 'GET' as const, url: `${base}/journal-entries/${posted.id}` },
      { method: 'GET' as const, url: `${base}/accounts` },
      { method: 'POST' as const, url: `${base}/journal-entries/${posted.id}/reverse`, payload: {} },
      {
        method: 'POST' as const,
        url: `${base}/journal-entries`,
        payload: twoLine(books, '2026-03-07', '1010', '4000', 1),
      },
    ];
    for (const probe of probes) {
      const response = await stack.app.inject({
        ...probe,
        headers: { ...firmB.auth, 'idempotency-key': `b-${probe.url}` },
      });
      expect(response.statusCode, `${probe.method} ${probe.url}`).toBe(404);
      expect(response.json()).toMatchObject({ code: 'ENTITY_NOT_FOUND' });
    }
  });

  it('needs a token', async () => {
    const response = await stack.app.inject({ method: 'GET', url: `/v1/entities/${books.entityId}/journal-entries` });
    expect(response.statusCode).toBe(401);
  });
});
