import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestStack, type TestStack } from '../../../test/harness.ts';
import { warmPool } from './warm-pool.ts';

let stack: TestStack;

beforeAll(async () => {
  stack = await startTestStack();
});

afterAll(async () => {
  await stack?.close();
});

/** The backends of one application name, as the runtime role sees them (its own sessions). */
async function backendsOf(connectionString: string, applicationName: string): Promise<string[]> {
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    const { rows } = await client.query<{ query: string }>(
      'select query from pg_stat_activity where application_name = $1 and pid <> pg_backend_pid()',
      [applicationName],
    );
    return rows.map((row) => row.query);
  } finally {
    await client.end();
  }
}

describe('warming a pool', () => {
  it('opens the connections at once, reads every tenant table on each, and keeps them past the idle timeout', async () => {
    const connectionString = stack.platform.runtimePool.options.connectionString ?? '';
    const applicationName = `warm-test-${randomUUID().slice(0, 8)}`;
    const pool = new pg.Pool({
      connectionString,
      application_name: applicationName,
      max: 4,
      min: 3,
      idleTimeoutMillis: 50,
    });
    try {
      expect(await backendsOf(connectionString, applicationName)).toEqual([]);
      expect(await warmPool(pool, 3)).toBe(3);
      expect({ total: pool.totalCount, idle: pool.idleCount }).toEqual({ total: 3, idle: 3 });
      const queries = await backendsOf(connectionString, applicationName);
      expect(queries).toHaveLength(3);
      for (const query of queries) {
        for (const table of ['entities', 'journal_lines', 'account_balances', 'audit_events']) {
          expect(query).toContain(`.${table} limit 0`);
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(pool.totalCount).toBe(3);
      expect(await backendsOf(connectionString, applicationName)).toHaveLength(3);
    } finally {
      await pool.end();
    }
  });

  it('warms the platform pools up to their sizes', async () => {
    const warmed = await stack.platform.warmConnections();
    expect(warmed).toEqual({ runtime: stack.config.runtimePoolMax, control: 5 });
    expect(stack.platform.runtimePool.totalCount).toBe(stack.config.runtimePoolMax);
    expect(stack.platform.ownerPool.totalCount).toBe(5);
  });
});
