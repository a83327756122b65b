import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUnthrottledTenant, startTestStack, type TestStack, type TestTenant } from '../../../test/harness.ts';
import { addUser, countEntries, createBooks, line, report } from '../ledger.test-support.ts';

/**
 * Sign-off of adjusting entries over HTTP: draft → submitted → approved → posted, with the
 * approver not the preparer, comments and document references, and the posted entry landing
 * in the trial balance's adjustments column.
 */
let stack: TestStack;
let firm: TestTenant;
let other: TestTenant;

beforeAll(async () => {
  stack = await startTestStack();
  firm = await createUnthrottledTenant(stack.app, 'Sign-off');
  other = await createUnthrottledTenant(stack.app, 'Sign-off Other');
});

afterAll(async () => {
  await stack?.close();
});

describe('adjustment sign-off', () => {
  it('walks an adjustment to the journal with a second person approving', async () => {
    const books = await createBooks(stack, firm);
    const staff = await addUser(stack, firm, ['staff'], [books.entityId]);
    const manager = await addUser(stack, firm, ['manager']);
    const base = `/v1/entities/${books.entityId}/adjustments`;
    const created = await stack.app.inject({
      method: 'POST',
      url: base,
      headers: staff.auth,
      payload: {
        date: '2026-03-31',
        kind: 'adjusting',
        memo: 'March depreciation',
        lines: [line(books.accounts['6800'], 'debit', 41_667), line(books.accounts['1590'], 'credit', 41_667)],
        documents: [{ name: 'Fixed asset schedule', url: 'https://docs.example.test/fa-2026-03.xlsx' }],
        comment: 'Straight line, 5 years',
      },
    });
    expect(created.statusCode).toBe(201);
    const draft = created.json<{ id: string; status: string; comments: unknown[]; documents: unknown[] }>();
    expect(draft).toMatchObject({ status: 'draft', preparedBy: staff.userId });
    expect(draft.comments).toHaveLength(1);
    expect(draft.documents).toHaveLength(1);

    const act = (who: { authorization: string }, action: string, key?: string) =>
      stack.app.inject({
        method: 'POST',
        url: `${base}/${draft.id}/${action}`,
        headers: { ...who, ...(key ? { 'idempotency-key': key } : {}) },
        payload: {},
      });
    expect((await act(manager.auth, 'approve')).json()).toMatchObject({ code: 'ADJUSTMENT_STATE_INVALID' });
    expect((await act(staff.auth, 'submit')).json()).toMatchObject({ status: 'submitted' });
    // Staff may prepare but not approve (the access table), whoever prepared it.
    const staffApproval = await act(staff.auth, 'approve');
    expect(staffApproval.statusCode).toBe(403);
    expect(staffApproval.json()).toMatchObject({ code: 'AUTH_FORBIDDEN' });
    const otherStaff = await addUser(stack, firm, ['staff'], [books.entityId]);
    expect((await act(otherStaff.auth, 'approve')).json()).toMatchObject({ code: 'AUTH_FORBIDDEN' });
    expect((await act(manager.auth, 'approve')).json()).toMatchObject({
      status: 'approved',
      approvedBy: manager.userId,
    });
    expect((await act(staff.auth, 'post')).json()).toMatchObject({ code: 'LEDGER_IDEMPOTENCY_KEY_REQUIRED' });
    const posted = await act(staff.auth, 'post', 'post-adj-1');
    expect(posted.statusCode).toBe(200);
    const body = posted.json<{ status: string; postedEntryId: string }>();
    expect(body.status).toBe('posted');
    const entry = await stack.app.inject({
      method: 'GET',
      url: `/v1/entities/${books.entityId}/journal-entries/${body.postedEntryId}`,
      headers: firm.auth,
    });
    expect(entry.json()).toMatchObject({ kind: 'adjusting', date: '2026-03-31' });
    expect((await act(staff.auth, 'post', 'post-adj-2')).json()).toMatchObject({ code: 'ADJUSTMENT_STATE_INVALID' });
    expect(await countEntries(stack, books)).toBe(1);

    // A manager who prepared an adjustment may not approve it.
    const own = await stack.app.inject({
      method: 'POST',
      url: base,
      headers: manager.auth,
      payload: {
        date: '2026-03-31',
        kind: 'adjusting',
        memo: 'Accrual',
        lines: [line(books.accounts['6800'], 'debit', 100), line(books.accounts['1590'], 'credit', 100)],
      },
    });
    expect(own.statusCode).toBe(201);
    const ownId = own.json<{ id: string }>().id;
    const actOn = (id: string, action: string) =>
      stack.app.inject({ method: 'POST', url: `${base}/${id}/${action}`, headers: manager.auth, payload: {} });
    expect((await actOn(ownId, 'submit')).json()).toMatchObject({ status: 'submitted' });
    const self = await actOn(ownId, 'approve');
    expect(self.statusCode).toBe(403);
    expect(self.json()).toMatchObject({ code: 'ADJUSTMENT_SELF_APPROVAL' });

    const tb = (await report(stack, books, 'trial-balance', 'asOf=2026-03-31&verify=true')).json<{
      currencies: Array<{
        rows: Array<{ account: { number: string }; unadjusted: object; adjustments: object; adjusted: object }>;
      }>;
      checks: object;
    }>();
    const depreciation = tb.currencies[0]?.rows.find((row) => row.account.number === '6800');
    expect(depreciation).toMatchObject({
      unadjusted: { debitMinor: 0, creditMinor: 0 },
      adjustments: { debitMinor: 41_667, creditMinor: 0 },
      adjusted: { debitMinor: 41_667, creditMinor: 0 },
    });
    expect(tb.checks).toEqual({ balanced: true, tiesToJournal: true });
  });

  it('refuses an unbalanced draft and hides adjustments from another firm', async () => {
    const books = await createBooks(stack, firm);
    const base = `/v1/entities/${books.entityId}/adjustments`;
    const unbalanced = await stack.app.inject({
      method: 'POST',
      url: base,
      headers: firm.auth,
      payload: {
        date: '2026-03-31',
        kind: 'adjusting',
        lines: [line(books.accounts['6800'], 'debit', 2), line(books.accounts['1590'], 'credit', 1)],
      },
    });
    expect(unbalanced.json()).toMatchObject({ code: 'LEDGER_ENTRY_UNBALANCED' });
    const good = await stack.app.inject({
      method: 'POST',
      url: base,
      headers: firm.auth,
      payload: {
        date: '2026-03-31',
        kind: 'reclassifying',
        lines: [line(books.accounts['6500'], 'debit', 2), line(books.accounts['6400'], 'credit', 2)],
      },
    });
    const id = good.json<{ id: string }>().id;
    for (const url of [`${base}/${id}`, base]) {
      const response = await stack.app.inject({ method: 'GET', url, headers: other.auth });
      expect(response.statusCode).toBe(404);
    }
    const submit = await stack.app.inject({
      method: 'POST',
      url: `${base}/${id}/submit`,
      headers: other.auth,
      payload: {},
    });
    expect(submit.statusCode).toBe(404);
  });
});
