import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenant, startTestStack, type TestStack } from '../../../test/harness.ts';
import { tenantContextOf } from '../../tenancy/tenancy.service.ts';
import { isAppError } from '../errors.ts';
import { parseId } from '../ids.ts';
import { TenantScopes } from './tenant-scope.ts';

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

describe('a tenant scope on an exhausted pool', () => {
  it('is refused with DATABASE_BUSY and a retry hint once the connection timeout passes', async () => {
    const firm = await createTenant(stack.app, 'Busy pool');
    const record = await stack.platform.tenancy.getTenant(parseId('tenant', firm.id) ?? '');
    if (record === null) throw new Error('no tenant');
    const context = tenantContextOf(record);
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
