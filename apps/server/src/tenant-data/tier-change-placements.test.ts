import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUnthrottledTenant, operatorKey, startTestStack, type TestStack } from '../../test/harness.ts';
import { eventually } from '../jobs/jobs.test-support.ts';
import { createJobWorker, type JobWorker } from '../jobs/jobs.worker.ts';
import { createBooks, post, type TestBooks, twoLine } from '../ledger/ledger.test-support.ts';
import type { TenantPlacement } from '../platform/database/tenant-scope.ts';
import { parseId } from '../platform/ids.ts';
import { createLogger } from '../platform/logger.ts';
import { inTenantMaintenance } from './maintenance.ts';
import { countTenantRows } from './purge.ts';
import { tierChangeKind } from './tenant-data.service.ts';
import { discoverTenantTables, placementTables } from './tenant-tables.ts';

/**
 * Tier changes through the operator API across placements (pool -> bridge -> silo -> pool, as
 * far as this deployment offers them), each under several clients posting journal entries
 * continuously: a client retries a 503 TENANT_MOVING with the same Idempotency-Key, and after
 * every change the journal on the new placement holds exactly the entries the clients were
 * told were written (none lost, none twice), the old placement holds none of the firm's rows,
 * and the registry names the schema of the new database (none for the pool).
 */
let stack: TestStack;
let worker: JobWorker;
const operator = { authorization: `Bearer ${operatorKey}` };

beforeAll(async () => {
  stack = await startTestStack();
  worker = createJobWorker(stack.platform, createLogger('silent'), { kinds: [tierChangeKind], pollMs: 50 });
  worker.start();
});

afterAll(async () => {
  await worker.stop();
  await stack.close();
});

/** Posts until stopped; a refused write is retried with its key until it is acknowledged. */
async function client(books: TestBooks, until: { stop: boolean }, acknowledged: string[], retries: { count: number }) {
  while (!until.stop) {
    const key = randomUUID();
    for (;;) {
      const response = await post(stack, books, twoLine(books, '2026-06-10', '1000', '4000', 500), key);
      if (response.statusCode === 201) {
        acknowledged.push(parseId('journalEntry', response.json<{ id: string }>().id) ?? '');
        break;
      }
      expect(response.statusCode, response.body).toBe(503);
      expect(response.json<{ code: string }>().code).toBe('TENANT_MOVING');
      retries.count += 1;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

async function journalOn(placement: TenantPlacement, tenantId: string): Promise<string[]> {
  const pool = await stack.platform.tenantData.databases.ownerPoolFor(placement);
  return await inTenantMaintenance(pool, tenantId, { replica: false, readOnly: true }, async (db) => {
    const { rows } = await db.query<{ id: string }>('select id::text from journal_entries where tenant_id = $1', [
      tenantId,
    ]);
    return rows.map((row) => row.id);
  });
}

describe('tier changes across placements', () => {
  it('moves a firm through every placement this deployment offers under concurrent writers, losing and duplicating nothing', async () => {
    const tiersByModel = new Map(stack.platform.tiers.list().map((tier) => [tier.isolation, tier.name]));
    const path = ['bridge', 'silo', 'pool'].filter(
      (model) =>
        tiersByModel.has(model as TenantPlacement['model']) &&
        stack.platform.tenantData.databases.supports(model as TenantPlacement['model']),
    );
    const firm = await createUnthrottledTenant(stack.app, 'Traveller');
    const tenantId = parseId('tenant', firm.id) ?? '';
    const books = await createBooks(stack, firm);
    const acknowledged: string[] = [];
    for (let index = 0; index < 3; index += 1) {
      const first = await post(stack, books, twoLine(books, '2026-06-01', '1000', '4000', 100 + index));
      acknowledged.push(parseId('journalEntry', first.json<{ id: string }>().id) ?? '');
    }
    const tables = placementTables(await discoverTenantTables(stack.platform.ownerPool));
    for (const model of path) {
      const before = await stack.platform.tenantData.lifecycle(tenantId);
      const until = { stop: false };
      const retries = { count: 0 };
      const lists: string[][] = [[], [], []];
      const clients = lists.map((list) => client(books, until, list, retries));
      const started = await stack.app.inject({
        method: 'POST',
        url: `/v1/tenants/${firm.id}/tier-changes`,
        headers: operator,
        payload: { tier: tiersByModel.get(model as TenantPlacement['model']) },
      });
      expect(started.statusCode, started.body).toBe(202);
      const changeId = started.json<{ id: string }>().id;
      const done = await eventually(async () => {
        const read = await stack.app.inject({
          method: 'GET',
          url: `/v1/tenants/${firm.id}/tier-changes/${changeId}`,
          headers: operator,
        });
        const body = read.json<{ status: string; error: string | null; targetPlacement: TenantPlacement }>();
        return body.status === 'succeeded' || body.status === 'failed' ? body : undefined;
      }, 120_000).finally(() => {
        until.stop = true;
      });
      await Promise.all(clients);
      expect(done.status, done.error ?? '').toBe('succeeded');
      acknowledged.push(...lists.flat());
      const after = await stack.platform.tenantData.lifecycle(tenantId);
      expect(after.placement.model).toBe(model);
      // The registry names the schema the new database is at, so the next start skips it.
      const registry = await stack.platform.ownerPool.query<{ placement_schema: string | null }>(
        'select placement_schema from tenants where id = $1',
        [tenantId],
      );
      expect(registry.rows[0]?.placement_schema).toBe(
        model === 'pool' ? null : await stack.platform.clusters.schemaVersion(),
      );
      const onTarget = await journalOn(after.placement, tenantId);
      expect(new Set(onTarget).size).toBe(onTarget.length);
      expect([...onTarget].sort()).toEqual([...acknowledged].sort());
      const sourcePool = await stack.platform.tenantData.databases.ownerPoolFor(before.placement);
      const left = await countTenantRows(sourcePool, tenantId, tables);
      expect(Object.values(left).reduce((sum, count) => sum + count, 0)).toBe(0);
    }
    expect(path.length).toBeGreaterThan(0);
  }, 240_000);
});
