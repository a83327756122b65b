import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUnthrottledTenant, startTestStack, type TestStack, type TestTenant } from '../../../test/harness.ts';
import { parseId } from '../../platform/ids.ts';
import { tenantContextOf } from '../../tenancy/tenancy.service.ts';
import { addUser, countEntries, createBooks, post, type TestBooks, twoLine } from '../ledger.test-support.ts';

/**
 * Group commit of single posts (posting-groups.ts): concurrent posts by one user to one
 * entity share a transaction, yet each keeps its own entry, response, idempotency and audit
 * event, a refused post fails alone, and no other firm's or other user's post ever joins.
 */
let stack: TestStack;
let firmA: TestTenant;
let firmB: TestTenant;

beforeAll(async () => {
  stack = await startTestStack();
  firmA = await createUnthrottledTenant(stack.app, 'Groups A');
  firmB = await createUnthrottledTenant(stack.app, 'Groups B');
});

afterAll(async () => {
  await stack?.close();
});

/** Runs SQL in the firm's own tenant scope (row-level security applies). */
async function inScope<Row extends object>(tenant: TestTenant, sql: string, params: unknown[]): Promise<Row[]> {
  const record = await stack.platform.tenancy.getTenant(parseId('tenant', tenant.id) ?? '');
  if (record === null) throw new Error('tenant not in the registry');
  return await stack.platform.scopes.run(
    tenantContextOf(record),
    async (db) => (await db.query(sql, params)).rows as Row[],
  );
}

/** How many transactions posted the entity's entries. */
async function postingTransactions(books: TestBooks): Promise<number> {
  const [row] = await inScope<{ transactions: number }>(
    books.tenant,
    'select count(distinct posted_xact)::integer as transactions from journal_entries where entity_id = $1',
    [parseId('entity', books.entityId)],
  );
  return row?.transactions ?? 0;
}

const day = (index: number) => `2026-05-${String(1 + (index % 28)).padStart(2, '0')}`;

describe('group commit of single posts', () => {
  it('commits concurrent posts together, each with its own entry, response and audit event', async () => {
    const books = await createBooks(stack, firmA);
    const count = 24;
    const responses = await Promise.all(
      Array.from({ length: count }, (_, index) =>
        post(stack, books, twoLine(books, day(index), '1010', '4000', index + 1)),
      ),
    );
    expect(responses.map((response) => response.statusCode)).toEqual(Array(count).fill(201));
    const entries = responses.map((response) => response.json<{ id: string; lines: { amountMinor: number }[] }>());
    expect(new Set(entries.map((entry) => entry.id)).size).toBe(count);
    // Each response describes its own request's entry.
    expect(entries.map((entry) => entry.lines[0]?.amountMinor)).toEqual(Array.from({ length: count }, (_, i) => i + 1));
    expect(await countEntries(stack, books)).toBe(count);
    expect(await postingTransactions(books)).toBeLessThan(count);
    const [audit] = await inScope<{ events: number; requests: number; resources: number }>(
      firmA,
      `select count(*)::integer as events, count(distinct request_id)::integer as requests,
              count(distinct resource_id)::integer as resources
         from audit_events where entity_id = $1 and action = 'journal.post'`,
      [parseId('entity', books.entityId)],
    );
    expect(audit).toEqual({ events: count, requests: count, resources: count });
    const verified = await stack.app.inject({ method: 'GET', url: '/v1/audit/verify', headers: firmA.auth });
    expect(verified.json()).toMatchObject({ ok: true });
  });

  it('keeps each key: a repeat replays the first post, other content under a used key is refused', async () => {
    const books = await createBooks(stack, firmA);
    const same = twoLine(books, '2026-06-01', '1010', '4000', 900);
    const first = twoLine(books, '2026-06-02', '1010', '4000', 901);
    const other = twoLine(books, '2026-06-02', '1010', '4000', 902);
    const fillers = Array.from({ length: 6 }, (_, index) =>
      post(stack, books, twoLine(books, day(index), '1020', '4100', 10 + index)),
    );
    const [repeatA, repeatB, keyed, reused] = await Promise.all([
      post(stack, books, same, 'group-same'),
      post(stack, books, same, 'group-same'),
      post(stack, books, first, 'group-other'),
      post(stack, books, other, 'group-other'),
      ...fillers,
    ]);
    expect([repeatA?.statusCode, repeatB?.statusCode]).toEqual([201, 201]);
    expect(repeatA?.json<{ id: string }>().id).toBe(repeatB?.json<{ id: string }>().id);
    expect([repeatA?.headers['idempotent-replayed'], repeatB?.headers['idempotent-replayed']]).toContain('true');
    expect(keyed?.statusCode).toBe(201);
    expect(reused?.statusCode).toBe(409);
    expect(reused?.json()).toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
    expect(await countEntries(stack, books)).toBe(2 + fillers.length);
  });

  it('refuses a post in a closed period with its own code and posts the others', async () => {
    const books = await createBooks(stack, firmA);
    const closed = await stack.app.inject({
      method: 'POST',
      url: `/v1/entities/${books.entityId}/periods/2026-01/close`,
      headers: firmA.auth,
    });
    expect(closed.statusCode).toBe(200);
    const responses = await Promise.all(
      Array.from({ length: 10 }, (_, index) =>
        post(stack, books, twoLine(books, index === 5 ? '2026-01-15' : day(index), '1010', '4000', 100 + index)),
      ),
    );
    expect(responses[5]?.json()).toMatchObject({ code: 'LEDGER_PERIOD_CLOSED' });
    expect(responses.filter((response) => response.statusCode === 201)).toHaveLength(9);
    expect(await countEntries(stack, books)).toBe(9);
  });

  it("never lets another firm's or an unassigned user's post ride in a firm's group", async () => {
    const books = await createBooks(stack, firmA);
    const elsewhere = await createBooks(stack, firmA);
    const staff = await addUser(stack, firmA, ['staff'], [elsewhere.entityId]);
    const intruders = [
      ...Array.from({ length: 3 }, () => ({ ...books, tenant: firmB })),
      ...Array.from({ length: 3 }, () => ({ ...books, tenant: { ...firmA, auth: staff.auth } })),
    ];
    const own = Array.from({ length: 10 }, (_, index) =>
      post(stack, books, twoLine(books, day(index), '1010', '4000', 5)),
    );
    const refused = intruders.map((intruder) =>
      post(stack, intruder, twoLine(books, '2026-05-20', '1010', '4000', 7), randomUUID()),
    );
    const [mine, theirs] = await Promise.all([Promise.all(own), Promise.all(refused)]);
    expect(mine.map((response) => response.statusCode)).toEqual(Array(10).fill(201));
    for (const response of theirs) {
      expect(response.statusCode).toBe(404);
      expect(response.json()).toMatchObject({ code: 'ENTITY_NOT_FOUND' });
    }
    expect(await countEntries(stack, books)).toBe(10);
    const [leaked] = await inScope<{ entries: number }>(
      firmB,
      'select count(*)::integer as entries from journal_entries',
      [],
    );
    expect(leaked?.entries).toBe(0);
  });
});
