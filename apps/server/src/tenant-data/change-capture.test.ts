import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenant, startTestStack, type TestStack } from '../../test/harness.ts';
import { contextOf } from '../jobs/jobs.test-support.ts';
import { newUuid, parseId } from '../platform/ids.ts';
import {
  activateCapture,
  deactivateCapture,
  installCapture,
  markMovedOut,
  moveLockSql,
  readChanges,
} from './change-capture.ts';
import { inTenantMaintenance } from './maintenance.ts';
import { discoverTenantTables, placementTables } from './tenant-tables.ts';

/**
 * The source side of a move in the database: while a move is active for a tenant, its writes
 * record the changed rows' keys (and nobody else's); a writer waits while the mover holds the
 * freeze, and once the tenant has moved out its writes are refused with SQLSTATE CH900 and
 * nothing of them stays (the tenant scope maps CH900 to 503 TENANT_MOVING).
 */
let stack: TestStack;

beforeAll(async () => {
  stack = await startTestStack();
  const tables = placementTables(await discoverTenantTables(stack.platform.ownerPool));
  const client = await stack.platform.ownerPool.connect();
  try {
    await installCapture(client, tables);
  } finally {
    client.release();
  }
});

afterAll(async () => {
  await stack.close();
});

async function renameUser(tenantId: string, email: string): Promise<void> {
  const firm = { id: `ten_${tenantId.replaceAll('-', '')}` } as Parameters<typeof contextOf>[1];
  const context = await contextOf(stack, firm);
  await stack.platform.scopes.run(context, (db) => db.query('update users set email = $1', [email]));
}

describe('move change capture', () => {
  it("records the moving tenant's changed keys only, and nothing after deactivation", async () => {
    const moving = parseId('tenant', (await createTenant(stack.app, 'Moving')).id) ?? '';
    const still = parseId('tenant', (await createTenant(stack.app, 'Still')).id) ?? '';
    await activateCapture(stack.platform.ownerPool, moving, newUuid());
    try {
      await renameUser(moving, 'renamed@moving.test');
      await renameUser(still, 'renamed@still.test');
      const client = await stack.platform.ownerPool.connect();
      try {
        const changes = await readChanges(client, moving);
        // An update records the key from the new and the old row.
        expect(changes.map((change) => change.table)).toEqual(['users', 'users']);
        expect(changes[0]?.key).toMatchObject({ tenant_id: moving });
        expect(await readChanges(client, still)).toEqual([]);
      } finally {
        client.release();
      }
    } finally {
      await deactivateCapture(stack.platform.ownerPool, moving);
    }
    await renameUser(moving, 'again@moving.test');
    const after = await stack.platform.ownerPool.query('select 1 from tenant_move_changes where tenant = $1', [moving]);
    expect(after.rowCount).toBe(0);
  });

  it('makes writers wait for the freeze and refuses them once the tenant moved out', async () => {
    const moving = parseId('tenant', (await createTenant(stack.app, 'Frozen')).id) ?? '';
    await activateCapture(stack.platform.ownerPool, moving, newUuid());
    const mover = await stack.platform.ownerPool.connect();
    try {
      await mover.query(`select pg_advisory_lock(${moveLockSql(moving)})`);
      let settled = false;
      const write = renameUser(moving, 'during@freeze.test').finally(() => {
        settled = true;
      });
      const outcome = write.then(
        () => 'written',
        (error: unknown) => (error as { code?: string }).code ?? String(error),
      );
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(settled).toBe(false);
      await mover.query('begin');
      await markMovedOut(mover, moving);
      await mover.query('commit');
      await mover.query(`select pg_advisory_unlock(${moveLockSql(moving)})`);
      expect(await outcome).toBe('TENANT_MOVING');
      const emails = await inTenantMaintenance(stack.platform.ownerPool, moving, { replica: false }, async (client) => {
        const { rows } = await client.query<{ email: string }>('select email from users where tenant_id = $1', [
          moving,
        ]);
        return rows.map((row) => row.email);
      });
      expect(emails).toHaveLength(1);
      expect(emails).not.toContain('during@freeze.test');
    } finally {
      mover.release();
      await deactivateCapture(stack.platform.ownerPool, moving);
    }
  });
});
