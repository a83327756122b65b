import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUnthrottledTenant, startTestStack, type TestStack, type TestTenant } from '../../../test/harness.ts';
import { addUser, countEntries, createBooks, post, report, twoLine } from '../ledger.test-support.ts';

/**
 * Periods and close over HTTP: a closed period refuses postings (in code and, underneath, in
 * the database), reopening needs partner or owner and a reason and is recorded, year-end
 * close zeroes income into retained earnings, and the checklist rolls forward.
 */
let stack: TestStack;
let firm: TestTenant;
let other: TestTenant;

beforeAll(async () => {
  stack = await startTestStack();
  firm = await createUnthrottledTenant(stack.app, 'Periods');
  other = await createUnthrottledTenant(stack.app, 'Periods Other');
});

afterAll(async () => {
  await stack?.close();
});

function periodUrl(entityId: string, period: string, action = '') {
  return `/v1/entities/${entityId}/periods/${period}${action}`;
}

describe('close and reopen', () => {
  it('lists twelve periods of a fiscal year ending in June', async () => {
    const books = await createBooks(stack, firm, { fiscalYearEnd: '06-30' });
    const response = await stack.app.inject({
      method: 'GET',
      url: `/v1/entities/${books.entityId}/periods?fiscalYear=2026`,
      headers: firm.auth,
    });
    const items = response.json<{ items: Array<{ period: string; periodNumber: number; status: string }> }>().items;
    expect(items).toHaveLength(12);
    expect(items[0]).toMatchObject({ period: '2025-07', periodNumber: 1, status: 'open' });
    expect(items[11]).toMatchObject({ period: '2026-06', periodNumber: 12 });
  });

  it('refuses postings into a closed period, and takes them again after a reasoned reopen', async () => {
    const books = await createBooks(stack, firm);
    const closed = await stack.app.inject({
      method: 'POST',
      url: periodUrl(books.entityId, '2026-01', '/close'),
      headers: firm.auth,
    });
    expect(closed.statusCode).toBe(200);
    expect(closed.json()).toMatchObject({ period: '2026-01', status: 'closed' });
    const again = await stack.app.inject({
      method: 'POST',
      url: periodUrl(books.entityId, '2026-01', '/close'),
      headers: firm.auth,
    });
    expect(again.json()).toMatchObject({ code: 'PERIOD_ALREADY_CLOSED' });

    const refused = await post(stack, books, twoLine(books, '2026-01-31', '1010', '4000', 100));
    expect(refused.statusCode).toBe(409);
    expect(refused.json()).toMatchObject({ code: 'LEDGER_PERIOD_CLOSED' });
    expect((await post(stack, books, twoLine(books, '2026-02-01', '1010', '4000', 100))).statusCode).toBe(201);

    const staff = await addUser(stack, firm, ['staff'], [books.entityId]);
    const forbidden = await stack.app.inject({
      method: 'POST',
      url: periodUrl(books.entityId, '2026-01', '/reopen'),
      headers: staff.auth,
      payload: { reason: 'late invoice' },
    });
    expect(forbidden.statusCode).toBe(403);
    expect(forbidden.json()).toMatchObject({ code: 'AUTH_FORBIDDEN' });
    const noReason = await stack.app.inject({
      method: 'POST',
      url: periodUrl(books.entityId, '2026-01', '/reopen'),
      headers: firm.auth,
      payload: {},
    });
    expect(noReason.statusCode).toBe(400);

    const partner = await addUser(stack, firm, ['partner']);
    const reopened = await stack.app.inject({
      method: 'POST',
      url: periodUrl(books.entityId, '2026-01', '/reopen'),
      headers: partner.auth,
      payload: { reason: 'Late vendor invoice for January' },
    });
    expect(reopened.statusCode).toBe(200);
    expect(reopened.json()).toMatchObject({ status: 'open' });
    expect((await post(stack, books, twoLine(books, '2026-01-31', '1010', '4000', 100))).statusCode).toBe(201);

    const history = await stack.app.inject({
      method: 'GET',
      url: periodUrl(books.entityId, '2026-01'),
      headers: firm.auth,
    });
    const events = history.json<{ events: Array<{ action: string; reason: string | null; actorId: string }> }>().events;
    expect(events.map((event) => event.action)).toEqual(['close', 'reopen']);
    expect(events[1]).toMatchObject({ reason: 'Late vendor invoice for January', actorId: partner.userId });
    expect(await countEntries(stack, books)).toBe(2);
  });

  it('answers 404 for a malformed period and for another firm', async () => {
    const books = await createBooks(stack, firm);
    const bad = await stack.app.inject({
      method: 'POST',
      url: periodUrl(books.entityId, '2026-13', '/close'),
      headers: firm.auth,
    });
    expect(bad.json()).toMatchObject({ code: 'PERIOD_INVALID' });
    for (const url of [
      periodUrl(books.entityId, '2026-01', '/close'),
      `/v1/entities/${books.entityId}/fiscal-years/2026/close`,
    ]) {
      const response = await stack.app.inject({
        method: 'POST',
        url,
        headers: { ...other.auth, 'idempotency-key': url },
      });
      expect(response.statusCode).toBe(404);
    }
  });
});

describe('year-end close', () => {
  it('moves the year\u2019s income to retained earnings and leaves the income statement intact', async () => {
    const books = await createBooks(stack, firm);
    expect((await post(stack, books, twoLine(books, '2025-03-01', '1010', '4000', 10_000_00))).statusCode).toBe(201);
    expect((await post(stack, books, twoLine(books, '2025-04-01', '6300', '1010', 2_500_00))).statusCode).toBe(201);
    const url = `/v1/entities/${books.entityId}/fiscal-years/2025/close`;
    const closed = await stack.app.inject({
      method: 'POST',
      url,
      headers: { ...firm.auth, 'idempotency-key': 'fy-2025' },
    });
    expect(closed.statusCode).toBe(201);
    expect(closed.json()).toMatchObject({ kind: 'closing', date: '2025-12-31' });
    const again = await stack.app.inject({
      method: 'POST',
      url,
      headers: { ...firm.auth, 'idempotency-key': 'fy-2025-b' },
    });
    expect(again.json()).toMatchObject({ code: 'PERIOD_NOTHING_TO_CLOSE' });

    const sheet = (await report(stack, books, 'balance-sheet', 'asOf=2025-12-31&verify=true')).json<{
      currencies: Array<{
        equity: Array<{ account: { number: string }; amountMinor: number }>;
        currentEarnings: { amountMinor: number };
      }>;
      checks: { balanced: boolean; tiesToJournal: boolean };
    }>();
    expect(sheet.checks).toEqual({ balanced: true, tiesToJournal: true });
    expect(sheet.currencies[0]?.currentEarnings.amountMinor).toBe(0);
    expect(sheet.currencies[0]?.equity.find((line) => line.account.number === '3200')?.amountMinor).toBe(7_500_00);

    const income = (await report(stack, books, 'income-statement', 'from=2025-01-01&to=2025-12-31')).json<{
      currencies: Array<{ netIncome: { amountMinor: number } }>;
    }>();
    expect(income.currencies[0]?.netIncome.amountMinor).toBe(7_500_00);
  });
});

describe('close checklist', () => {
  it('starts from the default tasks, signs one off, and rolls assignees forward to the next month', async () => {
    const books = await createBooks(stack, firm);
    const manager = await addUser(stack, firm, ['manager']);
    const march = await stack.app.inject({
      method: 'GET',
      url: periodUrl(books.entityId, '2026-03', '/checklist'),
      headers: firm.auth,
    });
    const tasks = march.json<{ items: Array<{ id: string; title: string; dueOn: string; status: string }> }>().items;
    expect(tasks.length).toBeGreaterThanOrEqual(5);
    expect(tasks[0]).toMatchObject({
      title: 'Reconcile bank and credit card accounts',
      dueOn: '2026-04-05',
      status: 'open',
    });
    const first = tasks[0];
    if (!first) throw new Error('no task');
    const assigned = await stack.app.inject({
      method: 'PATCH',
      url: periodUrl(books.entityId, '2026-03', `/checklist/${first.id}`),
      headers: firm.auth,
      payload: { assigneeId: manager.userId, status: 'done' },
    });
    expect(assigned.statusCode).toBe(200);
    expect(assigned.json()).toMatchObject({
      status: 'done',
      assigneeId: manager.userId,
      signedOffBy: expect.stringMatching(/^usr_/),
    });
    const added = await stack.app.inject({
      method: 'POST',
      url: periodUrl(books.entityId, '2026-03', '/checklist'),
      headers: firm.auth,
      payload: { title: 'Review sales tax filings', dueOn: '2026-04-20' },
    });
    expect(added.statusCode).toBe(201);

    const april = await stack.app.inject({
      method: 'GET',
      url: periodUrl(books.entityId, '2026-04', '/checklist'),
      headers: firm.auth,
    });
    const next = april.json<{
      items: Array<{ title: string; assigneeId: string | null; dueOn: string; status: string }>;
    }>().items;
    expect(next).toHaveLength(tasks.length + 1);
    expect(next[0]).toMatchObject({ assigneeId: manager.userId, dueOn: '2026-05-05', status: 'open' });
    expect(next.at(-1)).toMatchObject({ title: 'Review sales tax filings', dueOn: '2026-05-20' });
  });
});
