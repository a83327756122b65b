import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createUnthrottledTenant,
  operatorKey,
  startTestStack,
  type TestStack,
  type TestTenant,
} from '../../test/harness.ts';
import { addUser, createBooks, line, post, type TestBooks, twoLine } from '../ledger/ledger.test-support.ts';

/**
 * The audit log over HTTP: every mutation of the platform leaves one event naming its actor,
 * action, client entity, request id and source address; events are listed with filters and
 * a cursor, exported as CSV and JSON Lines; only owner, partner and auditor may read them;
 * and one firm can neither read nor verify another's log.
 */
let stack: TestStack;
let firm: TestTenant;
let books: TestBooks;

interface EventBody {
  id: string;
  seq: number;
  actor: { kind: string; id: string };
  action: string;
  entityId: string | null;
  resource: { type: string; id: string } | null;
  requestId: string | null;
  sourceAddress: string | null;
  beforeDigest: string | null;
  afterDigest: string | null;
  summary: Record<string, unknown> | null;
}

async function events(tenant: TestTenant, query: string): Promise<EventBody[]> {
  const response = await stack.app.inject({ method: 'GET', url: `/v1/audit/events?${query}`, headers: tenant.auth });
  expect(response.statusCode, response.body).toBe(200);
  return response.json<{ items: EventBody[] }>().items;
}

async function lastEvent(action: string): Promise<EventBody> {
  const found = await events(firm, `action=${action}&limit=1000`);
  const last = found.at(-1);
  if (last === undefined) throw new Error(`no ${action} event`);
  return last;
}

async function send(method: 'POST' | 'PATCH', url: string, payload: object, headers: object = firm.auth) {
  const response = await stack.app.inject({
    method,
    url,
    headers: { ...headers, 'idempotency-key': randomUUID() },
    payload,
  });
  expect(response.statusCode, response.body).toBeLessThan(300);
  return response.json<{ id: string }>();
}

beforeAll(async () => {
  stack = await startTestStack();
  firm = await createUnthrottledTenant(stack.app, 'Audit routes');
  books = await createBooks(stack, firm);
});

afterAll(async () => {
  await stack?.close();
});

describe('audit events for every mutation', () => {
  it('records onboarding and the plan override with the operator as actor', async () => {
    const created = await lastEvent('tenant.create');
    expect(created).toMatchObject({ seq: 1, actor: { kind: 'operator', id: 'bootstrap' }, entityId: null });
    expect(created.resource).toEqual({ type: 'tenant', id: firm.id });
    expect(created.afterDigest).toMatch(/^[0-9a-f]{64}$/);
    const override = await lastEvent('plan.override');
    expect(override).toMatchObject({ actor: { kind: 'operator', id: 'bootstrap' }, resource: { id: firm.id } });
    expect(override.sourceAddress).toBe('127.0.0.1');
  });

  it('records entity changes with the user, the request id and the source address', async () => {
    const response = await stack.app.inject({
      method: 'POST',
      url: '/v1/entities',
      headers: { ...firm.auth, 'x-request-id': 'audit-test-request-1' },
      payload: { name: `Audited ${randomUUID()}` },
    });
    expect(response.statusCode).toBe(201);
    const entity = response.json<{ id: string; createdBy: string }>();
    const created = await lastEvent('entity.create');
    expect(created).toMatchObject({
      actor: { kind: 'user', id: entity.createdBy },
      entityId: entity.id,
      resource: { type: 'entity', id: entity.id },
      requestId: 'audit-test-request-1',
      sourceAddress: '127.0.0.1',
      beforeDigest: null,
    });
    await send('PATCH', `/v1/entities/${entity.id}`, { legalName: 'Audited Holdings LLC' });
    const updated = await lastEvent('entity.update');
    expect(updated).toMatchObject({ entityId: entity.id, summary: { fields: 'legalName' } });
    expect(updated.beforeDigest).toBe(created.afterDigest);
    expect(updated.afterDigest).not.toBe(updated.beforeDigest);
    await send('PATCH', `/v1/entities/${entity.id}`, { status: 'archived' });
    expect(await lastEvent('entity.archive')).toMatchObject({ entityId: entity.id, beforeDigest: updated.afterDigest });
  });

  it('records chart and account changes', async () => {
    expect(await lastEvent('account.apply_template')).toMatchObject({ entityId: books.entityId });
    const account = await send('POST', `/v1/entities/${books.entityId}/accounts`, {
      number: '6999',
      name: 'Audit fees',
      type: 'expense',
    });
    expect(await lastEvent('account.create')).toMatchObject({ resource: { type: 'account', id: account.id } });
    await send('PATCH', `/v1/entities/${books.entityId}/accounts/${account.id}`, { name: 'Audit and review fees' });
    expect(await lastEvent('account.update')).toMatchObject({
      resource: { id: account.id },
      summary: { fields: 'name' },
    });
  });

  it('records exchange rates, one event per request', async () => {
    const response = await stack.app.inject({
      method: 'PUT',
      url: `/v1/entities/${books.entityId}/exchange-rates`,
      headers: firm.auth,
      payload: {
        source: 'import',
        rates: [
          { currency: 'EUR', date: '2026-03-01', rate: '1.08' },
          { currency: 'EUR', date: '2026-03-02', rate: '1.09' },
        ],
      },
    });
    expect(response.statusCode, response.body).toBeLessThan(300);
    expect(await lastEvent('exchange_rate.record')).toMatchObject({
      entityId: books.entityId,
      summary: { source: 'import', rates: 2 },
    });
  });

  it('records journal posts, batches and reversals, one event per request', async () => {
    const posted = await post(stack, books, twoLine(books, '2026-03-15', '1000', '4000', 12_500));
    expect(posted.statusCode).toBe(201);
    const entryId = posted.json<{ id: string }>().id;
    expect(await lastEvent('journal.post')).toMatchObject({
      entityId: books.entityId,
      resource: { type: 'journal_entry', id: entryId },
      summary: { lines: 2, date: '2026-03-15' },
    });
    const batch = await stack.app.inject({
      method: 'POST',
      url: `/v1/entities/${books.entityId}/journal-entries/batch`,
      headers: { ...firm.auth, 'idempotency-key': randomUUID() },
      payload: { entries: [1, 2, 3].map((day) => twoLine(books, `2026-03-0${day}`, '1000', '4000', 100 * day)) },
    });
    expect(batch.statusCode, batch.body).toBe(201);
    const batchEvents = await events(firm, 'action=journal.post_batch');
    expect(batchEvents).toHaveLength(1);
    expect(batchEvents[0]?.summary).toMatchObject({ entries: 3, lines: 6 });
    const reversal = await send('POST', `/v1/entities/${books.entityId}/journal-entries/${entryId}/reverse`, {});
    expect(await lastEvent('journal.reverse')).toMatchObject({
      resource: { id: entryId },
      summary: { reversalId: reversal.id },
    });
  });

  it('records period close, reopen, year-end close and the checklist', async () => {
    const periods = `/v1/entities/${books.entityId}/periods`;
    await send('POST', `${periods}/2026-01/close`, {});
    expect(await lastEvent('period.close')).toMatchObject({ resource: { type: 'period', id: '2026-01-01' } });
    await send('POST', `${periods}/2026-01/reopen`, { reason: 'Late invoice' });
    expect(await lastEvent('period.reopen')).toMatchObject({ summary: { reason: 'Late invoice' } });
    await send('POST', `/v1/entities/${books.entityId}/fiscal-years/2026/close`, {});
    expect(await lastEvent('period.year_end_close')).toMatchObject({ resource: { type: 'fiscal_year', id: '2026' } });
    const task = await send('POST', `${periods}/2026-02/checklist`, { title: 'Reconcile the bank account' });
    expect(await lastEvent('close_task.create')).toMatchObject({ resource: { type: 'close_task', id: task.id } });
    await send('PATCH', `${periods}/2026-02/checklist/${task.id}`, { status: 'done' });
    expect(await lastEvent('close_task.update')).toMatchObject({ summary: { status: 'done' } });
  });

  it('records each step of an adjustment', async () => {
    const manager = await addUser(stack, firm, ['manager']);
    const base = `/v1/entities/${books.entityId}/adjustments`;
    const draft = await send('POST', base, {
      date: '2026-02-28',
      kind: 'adjusting',
      lines: [line(books.accounts['6800'], 'debit', 500), line(books.accounts['1590'], 'credit', 500)],
    });
    await send('POST', `${base}/${draft.id}/submit`, {});
    await send('POST', `${base}/${draft.id}/approve`, {}, manager.auth);
    await send('POST', `${base}/${draft.id}/post`, {});
    const steps = await events(firm, `action=adjustment.*`);
    expect(steps.map((event) => event.action)).toEqual([
      'adjustment.create',
      'adjustment.submit',
      'adjustment.approve',
      'adjustment.post',
    ]);
    expect(steps[2]?.actor.id).toBe(manager.userId);
    expect(steps[3]?.summary).toMatchObject({ from: 'approved', to: 'posted' });
  });

  it('records job submission and cancellation', async () => {
    const submitted = await stack.app.inject({
      method: 'POST',
      url: '/v1/entities/imports',
      headers: firm.auth,
      payload: [{ name: `Imported ${randomUUID()}` }],
    });
    expect(submitted.statusCode, submitted.body).toBe(202);
    const jobId = submitted.json<{ jobId: string }>().jobId;
    expect(await lastEvent('job.create')).toMatchObject({ resource: { type: 'job', id: jobId } });
    // No worker runs in this stack, so the job is still queued.
    await send('POST', `/v1/jobs/${jobId}/cancel`, {});
    expect(await lastEvent('job.cancel')).toMatchObject({ resource: { id: jobId }, summary: { status: 'cancelled' } });
  });

  it('writes nothing when a mutation fails', async () => {
    const before = await events(firm, 'limit=1000');
    const unbalanced = await post(stack, books, {
      date: '2026-03-20',
      lines: [line(books.accounts['1000'], 'debit', 100), line(books.accounts['4000'], 'credit', 99)],
    });
    expect(unbalanced.statusCode).toBe(422);
    const duplicate = await stack.app.inject({
      method: 'POST',
      url: '/v1/entities',
      headers: firm.auth,
      payload: {
        name: (
          await stack.app.inject({ method: 'GET', url: `/v1/entities/${books.entityId}`, headers: firm.auth })
        ).json<{ name: string }>().name,
      },
    });
    expect(duplicate.statusCode).toBe(409);
    expect(await events(firm, 'limit=1000')).toEqual(before);
  });

  it('keeps the chain verifiable after all of the above', async () => {
    const response = await stack.app.inject({ method: 'GET', url: '/v1/audit/verify', headers: firm.auth });
    expect(response.statusCode).toBe(200);
    const body = response.json<{
      ok: boolean;
      eventsChecked: number;
      heads: { lane: number; seq: number; hash: string }[];
    }>();
    expect(body.ok).toBe(true);
    // One request at a time: every event linked into lane 0.
    expect(body.heads).toEqual([{ lane: 0, seq: body.eventsChecked, hash: expect.stringMatching(/^[0-9a-f]{64}$/) }]);
    const operator = await stack.app.inject({
      method: 'GET',
      url: `/v1/admin/tenants/${firm.id}/audit/verify`,
      headers: { authorization: `Bearer ${operatorKey}` },
    });
    expect(operator.json()).toEqual(body);
  });
});

describe('reading the audit log', () => {
  it('pages with a cursor and filters by actor, entity and time', async () => {
    const all = await events(firm, 'limit=1000');
    const pages: EventBody[] = [];
    let cursor: string | null = null;
    do {
      const query: string = cursor ? `limit=3&cursor=${cursor}` : 'limit=3';
      const response = await stack.app.inject({ method: 'GET', url: `/v1/audit/events?${query}`, headers: firm.auth });
      const body = response.json<{ items: EventBody[]; nextCursor: string | null }>();
      pages.push(...body.items);
      cursor = body.nextCursor;
    } while (cursor);
    expect(pages).toEqual(all);
    expect(all.map((event) => event.seq)).toEqual(all.map((_, index) => index + 1));

    const byEntity = await events(firm, `entity=${books.entityId}&limit=1000`);
    expect(byEntity.length).toBeGreaterThan(5);
    expect(byEntity.every((event) => event.entityId === books.entityId)).toBe(true);
    const byOperator = await events(firm, 'actor=bootstrap');
    expect(byOperator.map((event) => event.action)).toEqual(['tenant.create', 'plan.override']);
    expect(await events(firm, `from=${new Date(Date.now() + 60_000).toISOString()}`)).toEqual([]);
    const bad = await stack.app.inject({ method: 'GET', url: '/v1/audit/events?entity=usr_1', headers: firm.auth });
    expect(bad.json()).toMatchObject({ code: 'AUDIT_FILTER_INVALID' });
    const badCursor = await stack.app.inject({ method: 'GET', url: '/v1/audit/events?cursor=zz', headers: firm.auth });
    expect(badCursor.json()).toMatchObject({ code: 'PAGINATION_CURSOR_INVALID' });
  });

  it('exports every matching event as CSV and as JSON Lines', async () => {
    const all = await events(firm, 'limit=1000');
    const csv = await stack.app.inject({ method: 'GET', url: '/v1/audit/events?format=csv', headers: firm.auth });
    expect(csv.headers['content-type']).toContain('text/csv');
    const rows = csv.body.trimEnd().split('\r\n');
    expect(rows[0]).toMatch(/^lane,seq,id,occurredAt,actorKind,actorId,action,/);
    expect(rows).toHaveLength(all.length + 1);
    const jsonl = await stack.app.inject({ method: 'GET', url: '/v1/audit/events?format=jsonl', headers: firm.auth });
    const lines = jsonl.body
      .trimEnd()
      .split('\n')
      .map((text) => JSON.parse(text));
    expect(lines).toEqual(all);
  });

  it('lets owner, partner and auditor read, and no one else', async () => {
    for (const [roles, status] of [
      [['auditor'], 200],
      [['partner'], 200],
      [['manager'], 403],
      [['staff'], 403],
      [['client'], 403],
    ] as const) {
      const user = await addUser(stack, firm, [...roles]);
      for (const url of ['/v1/audit/events', '/v1/audit/verify']) {
        const response = await stack.app.inject({ method: 'GET', url, headers: user.auth });
        expect(response.statusCode, `${roles} ${url}`).toBe(status);
      }
    }
  });

  it('shows a firm only its own events and chain', async () => {
    const other = await createUnthrottledTenant(stack.app, 'Audit other');
    const mine = await events(other, 'limit=1000');
    expect(mine.map((event) => event.action)).toEqual(['tenant.create', 'auth.sign_in.succeeded', 'plan.override']);
    expect(await events(other, `entity=${books.entityId}`)).toEqual([]);
    const verify = await stack.app.inject({ method: 'GET', url: '/v1/audit/verify', headers: other.auth });
    expect(verify.json()).toMatchObject({ ok: true, eventsChecked: 3 });
    const anonymous = await stack.app.inject({ method: 'GET', url: '/v1/audit/verify' });
    expect(anonymous.statusCode).toBe(401);
    const tenantOnOperatorRoute = await stack.app.inject({
      method: 'GET',
      url: `/v1/admin/tenants/${firm.id}/audit/verify`,
      headers: other.auth,
    });
    expect(tenantOnOperatorRoute.statusCode).toBe(401);
  });
});
