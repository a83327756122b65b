import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenant, startTestStack, type TestStack } from '../../../test/harness.ts';
import { tenantContextOf } from '../../tenancy/tenancy.service.ts';
import { isAppError } from '../errors.ts';
import { parseId } from '../ids.ts';
import { type TenantContext, TenantScopes } from './tenant-scope.ts';

/**
 * A scope that finds no free connection within the pool's timeout is refused with 503
 * DATABASE_BUSY and Retry-After (an overloaded instance), not a 500.
 */
let stack: TestStack;

beforeAll(async () => {
  stack = await startTestStack();
});

afterAll(async () => {
  await stack?.close();
});

/** A new firm's tenant context, as the auth layer would build it. */
async function newFirmContext(name: string): Promise<TenantContext> {
  const firm = await createTenant(stack.app, name);
  const record = await stack.platform.tenancy.getTenant(parseId('tenant', firm.id) ?? '');
  if (record === null) throw new Error('no tenant');
  return tenantContextOf(record);
}

describe('a tenant scope on an exhausted pool', () => {
  it('is refused with DATABASE_BUSY and a retry hint once the connection timeout passes', async () => {
    const context = await newFirmContext('Busy pool');
    const shared = stack.platform.placementPools.poolFor(context.placement);
    const pool = new pg.Pool({
      connectionString: shared.options.connectionString,
      max: 1,
      connectionTimeoutMillis: 100,
    });
    const scopes = new TenantScopes({ poolFor: () => pool });
    try {
      let release: () => void = () => {};
      const holding = new Promise<void>((resolve) => {
        release = resolve;
      });
      const holder = scopes.run(context, () => holding);
      const refused = await scopes.run(context, (db) => db.query('select 1')).catch((error: unknown) => error);
      expect(isAppError(refused) && refused.code).toBe('DATABASE_BUSY');
      expect(isAppError(refused) && refused.extensions.retryAfterSeconds).toBe(1);
      release();
      await holder;
      // With the connection back, the next scope runs.
      const { rows } = await scopes.run(context, (db) => db.query<{ one: number }>('select 1 as one'));
      expect(rows[0]?.one).toBe(1);
    } finally {
      await pool.end();
    }
  });
});

describe('a tenant scope whose connection the server ends', () => {
  it('fails with the cause, keeps the process up, and the next scope runs on a fresh connection', async () => {
    // Before connection errors were listened for, the checked-out client's 'error' event was
    // unhandled and ended the process (here, vitest reports an uncaught exception).
    const context = await newFirmContext('Ended session');
    let endedPid = 0;
    const ended = stack.platform.scopes.run(context, async (db) => {
      endedPid = (await db.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]?.pid ?? 0;
      // As a failover or an administrator would: the server ends this session mid-transaction.
      await db.query('select pg_terminate_backend(pg_backend_pid())');
    });
    await expect(ended).rejects.toThrow(/terminat/);
    // The client's 'error' event comes when the socket closes, after the query has failed.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const { rows } = await stack.platform.scopes.run(context, (db) =>
      db.query<{ pid: number }>('select pg_backend_pid() as pid'),
    );
    expect(rows[0]?.pid).toBeGreaterThan(0);
    expect(rows[0]?.pid).not.toBe(endedPid);
  });
});
