import { randomUUID } from 'node:crypto';
import pino from 'pino';
import type { TestStack, TestTenant } from '../../test/harness.ts';
import { insertUser, replaceAssignments } from '../identity/users.store.ts';
import { contextOf } from '../jobs/jobs.test-support.ts';
import type { ClaimedJob } from '../jobs/jobs.types.ts';
import { formatId, newUuid, parseId } from '../platform/ids.ts';
import { tenantContextOf } from '../tenancy/tenancy.service.ts';
import { reportPackJob } from './reports/report-packs.ts';

/** Helpers for the ledger's HTTP tests: a client entity with the US chart, and posting. */
export interface TestBooks {
  tenant: TestTenant;
  entityId: string;
  accounts: Record<string, string>;
}

export async function createBooks(stack: TestStack, tenant: TestTenant, extra: object = {}): Promise<TestBooks> {
  const entity = await stack.app.inject({
    method: 'POST',
    url: '/v1/entities',
    headers: tenant.auth,
    payload: { name: `Client ${randomUUID()}`, entityType: 's_corporation', ...extra },
  });
  if (entity.statusCode !== 201) throw new Error(`entity creation failed: ${entity.body}`);
  const entityId = entity.json<{ id: string }>().id;
  const chart = await stack.app.inject({
    method: 'POST',
    url: `/v1/entities/${entityId}/accounts/from-template`,
    headers: tenant.auth,
    payload: { template: 'us-small-business' },
  });
  if (chart.statusCode !== 201) throw new Error(`chart creation failed: ${chart.body}`);
  const accounts = Object.fromEntries(
    chart.json<{ items: Array<{ id: string; number: string }> }>().items.map((account) => [account.number, account.id]),
  );
  return { tenant, entityId, accounts };
}

export function line(
  accountId: string | undefined,
  side: 'debit' | 'credit',
  amountMinor: number | string,
  currency = 'USD',
) {
  if (accountId === undefined) throw new Error('no such account in the test chart');
  return { accountId, side, amountMinor, currency, exponent: currency === 'JPY' ? 0 : 2 };
}

/** A balanced two-line entry: debit one account, credit the other. */
export function twoLine(books: TestBooks, date: string, debit: string, credit: string, amountMinor: number | string) {
  return {
    date,
    memo: `${debit}/${credit}`,
    lines: [line(books.accounts[debit], 'debit', amountMinor), line(books.accounts[credit], 'credit', amountMinor)],
  };
}

export async function post(stack: TestStack, books: TestBooks, payload: object, key: string = randomUUID()) {
  return await stack.app.inject({
    method: 'POST',
    url: `/v1/entities/${books.entityId}/journal-entries`,
    headers: { ...books.tenant.auth, 'idempotency-key': key },
    payload,
  });
}

/** Counts the entity's journal rows straight from the entries list (all pages). */
export async function countEntries(stack: TestStack, books: TestBooks): Promise<number> {
  let total = 0;
  let cursor: string | null = null;
  do {
    const query: string = cursor ? `?limit=1000&cursor=${cursor}` : '?limit=1000';
    const page = await stack.app.inject({
      method: 'GET',
      url: `/v1/entities/${books.entityId}/journal-entries${query}`,
      headers: books.tenant.auth,
    });
    const body = page.json<{ items: unknown[]; nextCursor: string | null }>();
    total += body.items.length;
    cursor = body.nextCursor;
  } while (cursor);
  return total;
}

/**
 * Adds a user with the given role to a firm and returns its bearer header and id. Staff and
 * client users are assigned `entityIds` (public ids), which become their database entity scope.
 */
export async function addUser(stack: TestStack, tenant: TestTenant, roles: string[], entityIds: string[] = []) {
  const tenantId = parseId('tenant', tenant.id);
  if (tenantId === null) throw new Error(`not a tenant id: ${tenant.id}`);
  const record = await stack.platform.tenancy.getTenant(tenantId);
  if (record === null) throw new Error('tenant not in the registry');
  const userId = newUuid();
  const entityUuids = entityIds.map((id) => parseId('entity', id) ?? '');
  await stack.platform.scopes.run(tenantContextOf(record), async (db) => {
    await insertUser(db, {
      id: userId,
      tenantId,
      email: `${roles.join('-')}-${userId}@example.test`,
      passwordHash: 'x',
      roles,
    });
    await replaceAssignments(db, userId, entityUuids);
  });
  const scoped = roles.includes('staff') || roles.includes('client');
  const token = await stack.platform.tokens.issue({
    userId,
    tenantId,
    tier: record.tier,
    roles,
    entityIds: scoped ? entityUuids : null,
  });
  return { userId: formatId('user', userId), auth: { authorization: `Bearer ${token.accessToken}` } };
}

export async function report(stack: TestStack, books: TestBooks, name: string, query: string) {
  const response = await stack.app.inject({
    method: 'GET',
    url: `/v1/entities/${books.entityId}/reports/${name}?${query}`,
    headers: books.tenant.auth,
  });
  if (response.statusCode !== 200) throw new Error(`report ${name} failed: ${response.body}`);
  return response;
}

/**
 * Gives a firm a row in every ledger table through the API (entity with chart, a posting,
 * a closed period, a checklist, an adjustment with a comment), for the isolation canary.
 */
export async function seedLedgerCanary(stack: TestStack, tenant: TestTenant): Promise<void> {
  const books = await createBooks(stack, tenant);
  const posted = await post(stack, books, twoLine(books, '2026-01-15', '1010', '4000', 100));
  const base = `/v1/entities/${books.entityId}`;
  const steps = [
    { method: 'POST' as const, url: `${base}/periods/2025-12/close` },
    { method: 'GET' as const, url: `${base}/periods/2026-01/checklist` },
    {
      method: 'POST' as const,
      url: `${base}/adjustments`,
      payload: {
        date: '2026-01-31',
        kind: 'adjusting',
        comment: 'canary',
        lines: [line(books.accounts['6800'], 'debit', 1), line(books.accounts['1590'], 'credit', 1)],
      },
    },
    {
      method: 'PUT' as const,
      url: `${base}/exchange-rates`,
      payload: { source: 'manual', rates: [{ currency: 'EUR', date: '2026-01-15', rate: '1.08' }] },
    },
  ];
  if (posted.statusCode !== 201) throw new Error(`canary posting failed: ${posted.body}`);
  for (const step of steps) {
    const response = await stack.app.inject({ ...step, headers: tenant.auth });
    if (response.statusCode >= 300) throw new Error(`canary seeding ${step.url} failed: ${response.body}`);
  }
  // A report pack (report_packs), made by the job's handler as a worker runs it.
  await reportPackJob(stack.platform.ledger.renderer).run({
    job: { id: newUuid(), checkpoint: null } as unknown as ClaimedJob,
    payload: {
      entityId: parseId('entity', books.entityId) ?? '',
      from: null,
      to: '2026-01-31',
      formats: ['csv'],
      requestedBy: 'canary',
    },
    tenant: await contextOf(stack, tenant),
    scopes: stack.platform.scopes,
    signal: new AbortController().signal,
    progress: () => {},
    saveCheckpoint: async () => {},
    log: pino({ level: 'silent' }),
  });
}
