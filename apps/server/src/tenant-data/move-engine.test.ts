import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUnthrottledTenant, startTestStack, type TestStack, type TestTenant } from '../../test/harness.ts';
import { createBooks, post, type TestBooks, twoLine } from '../ledger/ledger.test-support.ts';
import { prepareDatabase, runtimeRoleFor } from '../platform/database/database-setup.ts';
import { newUuid, parseId } from '../platform/ids.ts';
import { createLogger } from '../platform/logger.ts';
import { inTenantMaintenance } from './maintenance.ts';
import { moveTenantRows } from './move-engine.ts';
import { countTenantRows } from './purge.ts';
import { checksumTable } from './row-sync.ts';
import type { MovePhase } from './tenant-data.types.ts';
import { discoverTenantTables, placementTables, type TenantTable } from './tenant-tables.ts';

/**
 * The move engine between two real databases (the suite's database and a second one migrated
 * for this file): under concurrent writers from several clients, every write a client was told
 * succeeded is on the target exactly once and nothing else is; the source keeps none of the
 * tenant's rows; the target's per-table checksums equal the source's; a move back works the
 * same; and a failure injected at every phase rolls back with the source untouched and serving.
 */
const log = createLogger('silent');
let stack: TestStack;
let second: pg.Pool;
let secondName: string;
let tables: TenantTable[];

beforeAll(async () => {
  stack = await startTestStack();
  secondName = `ch_move_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
  await stack.platform.ownerPool.query(`create database ${secondName}`);
  const url = new URL(stack.config.databaseUrl ?? '');
  url.pathname = `/${secondName}`;
  await prepareDatabase(url.toString(), log);
  second = new pg.Pool({ connectionString: url.toString(), max: 6 });
  tables = placementTables(await discoverTenantTables(stack.platform.ownerPool));
});

afterAll(async () => {
  await second.end();
  await stack.close();
  // Dropped only after every pool that reached it has closed: a forced drop kills idle
  // pooled connections, which would surface as an unhandled error in the test run.
  const client = new pg.Client({ connectionString: stack.config.databaseUrl });
  await client.connect();
  try {
    await client.query(`drop database if exists ${secondName} with (force)`);
    // prepareDatabase made the database's runtime role; roles outlive their database.
    await client.query(`drop role if exists ${runtimeRoleFor(secondName)}`);
  } finally {
    await client.end();
  }
});

function uuidOf(tenant: TestTenant): string {
  return parseId('tenant', tenant.id) ?? '';
}

async function checksums(pool: pg.Pool, tenantId: string): Promise<Record<string, string>> {
  return await inTenantMaintenance(pool, tenantId, { replica: false, readOnly: true }, async (client) => {
    const sums: Record<string, string> = {};
    for (const table of tables) {
      const sum = await checksumTable(client, table, tenantId);
      sums[table.name] = `${sum.rows}:${sum.sum}`;
    }
    return sums;
  });
}

async function journalIds(pool: pg.Pool, tenantId: string): Promise<string[]> {
  return await inTenantMaintenance(pool, tenantId, { replica: false, readOnly: true }, async (client) => {
    const { rows } = await client.query<{ id: string }>('select id::text from journal_entries where tenant_id = $1', [
      tenantId,
    ]);
    return rows.map((row) => row.id);
  });
}

/** How often the table was analyzed by hand (ANALYZE; autovacuum's runs are counted apart). */
async function analyzeCount(pool: pg.Pool, table: string): Promise<number> {
  const { rows } = await pool.query<{ count: string }>('select pg_stat_get_analyze_count($1::regclass) as count', [
    table,
  ]);
  return Number(rows[0]?.count);
}

const total = (counts: Record<string, number>) => Object.values(counts).reduce((sum, count) => sum + count, 0);

function moveOptions(tenantId: string, source: pg.Pool, target: pg.Pool, phases: MovePhase[] = []) {
  return {
    tenantId,
    changeId: newUuid(),
    source,
    target,
    flip: async () => {},
    onPhase: async (phase: MovePhase) => {
      phases.push(phase);
    },
    onProgress: () => {},
    signal: new AbortController().signal,
    log,
    purgeGraceMs: 0,
  };
}

/** A client posting entries one after another until stopped or refused; keeps what it was told was written. */
async function writer(books: TestBooks, until: { stop: boolean }, acknowledged: string[], refusals: string[]) {
  let sequence = 0;
  while (!until.stop) {
    sequence += 1;
    const response = await post(stack, books, twoLine(books, '2026-04-10', '1000', '4000', 100 + sequence));
    if (response.statusCode === 201) {
      acknowledged.push(parseId('journalEntry', response.json<{ id: string }>().id) ?? '');
    } else {
      // After the switch the source refuses for good (in this engine-level test the registry does not move).
      refusals.push(response.json<{ code: string }>().code);
      return;
    }
  }
}

describe('move engine', () => {
  it('moves a tenant under concurrent writers, losing and duplicating nothing, and leaves the source empty', async () => {
    const firm = await createUnthrottledTenant(stack.app, 'Mover');
    const books = await createBooks(stack, firm);
    for (let index = 0; index < 5; index += 1) {
      expect((await post(stack, books, twoLine(books, '2026-04-01', '1000', '4000', 50 + index))).statusCode).toBe(201);
    }
    const before = await journalIds(stack.platform.ownerPool, uuidOf(firm));
    const analyzedBefore = await analyzeCount(second, 'journal_entries');
    const until = { stop: false };
    const acknowledged: string[][] = [[], [], [], []];
    const refusals: string[][] = [[], [], [], []];
    const writers = acknowledged.map((list, index) => writer(books, until, list, refusals[index] ?? []));
    await new Promise((resolve) => setTimeout(resolve, 300));
    const phases: MovePhase[] = [];
    // The grace before the source purge outlasts the writers' next request, so each is refused by the move itself.
    const result = await moveTenantRows({
      ...moveOptions(uuidOf(firm), stack.platform.ownerPool, second, phases),
      purgeGraceMs: 1_500,
    }).finally(() => {
      until.stop = true;
    });
    await Promise.all(writers);

    const written = acknowledged.flat();
    expect(written.length).toBeGreaterThan(0);
    const onTarget = await journalIds(second, uuidOf(firm));
    // Every acknowledged write is on the target, once; nothing unacknowledged is.
    expect(new Set(onTarget).size).toBe(onTarget.length);
    expect([...onTarget].sort()).toEqual([...before, ...written].sort());
    // Refusals are the move's 503 only: after the switch the source sends writers away.
    expect(new Set(refusals.flat())).toEqual(new Set(['TENANT_MOVING']));
    expect(total(await countTenantRows(stack.platform.ownerPool, uuidOf(firm), tables))).toBe(0);
    expect(result.sourcePurged).toBe(true);
    expect(result.rowsCopied).toBeGreaterThan(50);
    // The copied tables' statistics were refreshed on the target, not left to autovacuum.
    expect(await analyzeCount(second, 'journal_entries')).toBeGreaterThan(analyzedBefore);
    expect(phases).toEqual([
      'preparing',
      'copying',
      'catching_up',
      'verifying',
      'frozen',
      'switching',
      'purging_source',
    ]);

    // And back again: the same rows, by checksum, in the first database; none left in the second.
    const onSecond = await checksums(second, uuidOf(firm));
    await moveTenantRows(moveOptions(uuidOf(firm), second, stack.platform.ownerPool));
    expect(await checksums(stack.platform.ownerPool, uuidOf(firm))).toEqual(onSecond);
    expect(total(await countTenantRows(second, uuidOf(firm), tables))).toBe(0);
    // Moved back in, the tenant writes again on the first database.
    expect((await post(stack, books, twoLine(books, '2026-04-20', '1000', '4000', 7))).statusCode).toBe(201);
  });

  it.each(['preparing', 'copying', 'catching_up', 'verifying', 'frozen', 'switching'] as const)(
    'rolls back a failure at %s: the source keeps every row and serves, the target keeps none',
    async (failing) => {
      const firm = await createUnthrottledTenant(stack.app, 'Rollback');
      const books = await createBooks(stack, firm);
      expect((await post(stack, books, twoLine(books, '2026-05-01', '1000', '4000', 10))).statusCode).toBe(201);
      const before = await checksums(stack.platform.ownerPool, uuidOf(firm));
      const options = {
        ...moveOptions(uuidOf(firm), stack.platform.ownerPool, second),
        failAt: (phase: MovePhase) => {
          if (phase === failing) throw new Error(`injected failure at ${phase}`);
        },
      };
      await expect(moveTenantRows(options)).rejects.toThrow(`injected failure at ${failing}`);
      expect(await checksums(stack.platform.ownerPool, uuidOf(firm))).toEqual(before);
      expect(total(await countTenantRows(second, uuidOf(firm), tables))).toBe(0);
      expect((await post(stack, books, twoLine(books, '2026-05-02', '1000', '4000', 11))).statusCode).toBe(201);
    },
  );
});
