import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import type { Logger } from 'pino';
import { assert } from '../platform/assert.ts';
import {
  activateCapture,
  deactivateCapture,
  forgetChanges,
  installCapture,
  markMovedOut,
  moveLockSql,
  readChanges,
} from './change-capture.ts';
import { assertMaintenancePermitted, beginTenantMaintenance } from './maintenance.ts';
import { purgeTenantRows } from './purge.ts';
import { applyChanges, checkAppliedRows, checksumTable, copyTable, countRows } from './row-sync.ts';
import { tenantDataLimits } from './tenant-data.limits.ts';
import type { MovePhase } from './tenant-data.types.ts';
import { discoverTenantTables, placementTables, quoteIdentifier, type TenantTable } from './tenant-tables.ts';

/**
 * The live move of one tenant's rows between two databases, generic over two owner-role pools
 * (docs/tier-changes.md). In order:
 *   1. prepare: the tables from the catalog on both sides (same names and columns), leftovers of
 *      the tenant on the target removed, change capture installed and activated on the source;
 *   2. copy: one repeatable-read snapshot of the source streamed table by table into one
 *      target transaction (COPY out -> COPY in), progress in rows;
 *   3. catch up: rounds that re-read the rows the capture saw change and apply them, until a
 *      round is small; the last round verifies every table (count + checksum) against the same
 *      snapshot of the source;
 *   4. freeze: the move's advisory lock taken exclusively, which waits for the tenant's writers
 *      in flight and holds new ones (reads go on); the final delta is applied and checked, and
 *      every table's row count compared;
 *   5. switch: the source marked moved-out (late writers there are refused and retry), then the
 *      registry flipped by `flip`; the freeze ends;
 *   6. purge the source after a grace period that outlives every instance's registry cache.
 * Any failure before the switch rolls back: capture off, the tenant's rows removed from the
 * target, the source untouched and serving; nothing is lost.
 */
export interface MoveOptions {
  tenantId: string;
  changeId: string;
  source: pg.Pool;
  target: pg.Pool;
  /** The atomic registry flip; throws when the registry no longer names the source. */
  flip(): Promise<void>;
  onPhase(phase: MovePhase): Promise<void>;
  onProgress(rowsCopied: number, rowsTotal: number): void;
  signal: AbortSignal;
  log: Logger;
  /** Test hook: called at each phase, may throw to prove the rollback. */
  failAt?: (phase: MovePhase) => void;
  /** Waits before purging the source (default tenantDataLimits.purgeGraceMs). */
  purgeGraceMs?: number;
}

export interface MoveResult {
  moved: true;
  rowsCopied: number;
  rowsCaughtUp: number;
  catchUpRounds: number;
  /** How long writers were held (the freeze), in milliseconds. */
  freezeMs: number;
  durationMs: number;
  tables: Record<string, number>;
  sourcePurged: boolean;
  [key: string]: unknown;
}

function sameShape(source: readonly TenantTable[], target: readonly TenantTable[]): string | null {
  const describe = (tables: readonly TenantTable[]) =>
    tables.map((table) => `${table.name}(${[...table.columns].sort().join(',')})`).sort();
  const left = describe(source);
  const right = describe(target);
  const missing = left.filter((entry) => !right.includes(entry));
  const extra = right.filter((entry) => !left.includes(entry));
  if (missing.length === 0 && extra.length === 0) return null;
  return `source and target schemas differ (source only: ${missing.join('; ') || '-'}; target only: ${extra.join('; ') || '-'})`;
}

async function prepare(options: MoveOptions): Promise<TenantTable[]> {
  await assertMaintenancePermitted(options.source);
  await assertMaintenancePermitted(options.target);
  const tables = placementTables(await discoverTenantTables(options.source));
  const shapeError = sameShape(tables, placementTables(await discoverTenantTables(options.target)));
  if (shapeError) throw new Error(`${shapeError}; migrate both databases first`);
  // The registry names the source, so anything of the tenant on the target is a leftover.
  await deactivateCapture(options.target, options.tenantId);
  await purgeTenantRows(options.target, options.tenantId, tables);
  const client = await options.source.connect();
  try {
    await installCapture(client, tables);
  } finally {
    client.release();
  }
  await activateCapture(options.source, options.tenantId, options.changeId);
  return tables;
}

interface Session {
  source: pg.PoolClient;
  target: pg.PoolClient;
}

async function withSession<T>(options: MoveOptions, replicaTarget: boolean, work: (session: Session) => Promise<T>) {
  const source = await options.source.connect();
  const target = await options.target.connect().catch((error: unknown) => {
    source.release();
    throw error;
  });
  try {
    await beginTenantMaintenance(source, options.tenantId, {
      replica: false,
      isolation: 'repeatable read',
      readOnly: true,
    });
    await beginTenantMaintenance(target, options.tenantId, { replica: replicaTarget });
    const result = await work({ source, target });
    await target.query('commit');
    await source.query('commit');
    return result;
  } catch (error) {
    await target.query('rollback').catch(() => {});
    await source.query('rollback').catch(() => {});
    throw error;
  } finally {
    target.release();
    source.release();
  }
}

/**
 * Refreshes the planner's statistics of the tables the copy filled, once it committed. A new
 * dedicated database has none: until autovacuum's next pass (a minute by default, never where
 * it is off) the moved firm's queries there would be planned as if its tables were empty, and
 * on a large firm that means reading all of a table where an index would do. Skips a table
 * that a VACUUM or ANALYZE is already working on.
 */
async function analyzeFilled(
  options: MoveOptions,
  tables: readonly TenantTable[],
  copied: Record<string, number>,
): Promise<void> {
  const filled = tables.filter((table) => (copied[table.name] ?? 0) > 0);
  if (filled.length === 0) return;
  await options.target.query(`analyze (skip_locked) ${filled.map((table) => quoteIdentifier(table.name)).join(', ')}`);
}

async function bulkCopy(options: MoveOptions, tables: readonly TenantTable[]): Promise<Record<string, number>> {
  return await withSession(options, true, async ({ source, target }) => {
    const totals: number[] = [];
    for (const table of tables) totals.push(await countRows(source, table, options.tenantId));
    const rowsTotal = totals.reduce((sum, count) => sum + count, 0);
    let rowsCopied = 0;
    options.onProgress(0, rowsTotal);
    const copied: Record<string, number> = {};
    for (const table of tables) {
      options.signal.throwIfAborted();
      copied[table.name] = await copyTable(source, target, table, options.tenantId, (rows) => {
        rowsCopied += rows;
        options.onProgress(rowsCopied, rowsTotal);
      });
    }
    for (const [index, table] of tables.entries()) {
      assert(copied[table.name] === totals[index], `table ${table.name}: copied rows differ from the snapshot's count`);
    }
    return copied;
  });
}

/** One catch-up round; with `verify`, every table's checksum is compared in the same snapshot. */
async function catchUpRound(options: MoveOptions, tables: readonly TenantTable[], verify: boolean): Promise<number> {
  const { changes, rows } = await withSession(options, true, async ({ source, target }) => {
    const captured = await readChanges(source, options.tenantId);
    const applied = await applyChanges(source, target, tables, options.tenantId, captured);
    if (verify) {
      for (const table of tables) {
        const [left, right] = [
          await checksumTable(source, table, options.tenantId),
          await checksumTable(target, table, options.tenantId),
        ];
        assert(
          left.rows === right.rows && left.sum === right.sum,
          `table ${table.name}: verification failed (source ${left.rows} rows/${left.sum}, target ${right.rows} rows/${right.sum})`,
        );
      }
    }
    return { changes: captured, rows: applied.upserted + applied.deleted };
  });
  await forgetChanges(options.source, options.tenantId, changes);
  return rows;
}

async function catchUp(options: MoveOptions, tables: readonly TenantTable[]) {
  let rowsCaughtUp = 0;
  let rounds = 0;
  for (;;) {
    options.signal.throwIfAborted();
    rounds += 1;
    const rows = await catchUpRound(options, tables, false);
    rowsCaughtUp += rows;
    if (rows <= tenantDataLimits.catchUpSmallRows || rounds >= tenantDataLimits.catchUpRoundsMax) break;
  }
  await options.onPhase('verifying');
  options.failAt?.('verifying');
  const verifiedRows = await catchUpRound(options, tables, true);
  return { rowsCaughtUp: rowsCaughtUp + verifiedRows, rounds: rounds + 1 };
}

/** The final delta under the freeze, checked row by row, then the touched tables' counts compared. */
async function finalDelta(options: MoveOptions, tables: readonly TenantTable[]): Promise<number> {
  return await withSession(options, true, async ({ source, target }) => {
    const changes = await readChanges(source, options.tenantId);
    const applied = await applyChanges(source, target, tables, options.tenantId, changes);
    await checkAppliedRows(target, tables, options.tenantId, applied.applied);
    // Tables the final delta did not touch are as verified in the last catch-up's snapshot; the
    // touched ones are counted again, so the freeze does not scan the tenant's largest tables.
    for (const table of tables.filter((candidate) => applied.applied.has(candidate.name))) {
      const [left, right] = [
        await countRows(source, table, options.tenantId),
        await countRows(target, table, options.tenantId),
      ];
      assert(
        left === right,
        `table ${table.name}: ${left} rows on the source, ${right} on the target after the freeze`,
      );
    }
    return applied.upserted + applied.deleted;
  });
}

async function rollBack(options: MoveOptions, tables: readonly TenantTable[] | null): Promise<void> {
  await options.onPhase('rolling_back').catch(() => {});
  await deactivateCapture(options.source, options.tenantId);
  if (tables) await purgeTenantRows(options.target, options.tenantId, tables);
  await options.onPhase('rolled_back').catch(() => {});
}

async function freezeAndSwitch(
  options: MoveOptions,
  tables: readonly TenantTable[],
): Promise<{ freezeMs: number; rows: number }> {
  const lock = await options.source.connect();
  let locked = false;
  try {
    await lock.query(`set lock_timeout = ${tenantDataLimits.freezeLockWaitMs}`);
    await options.onPhase('frozen');
    await lock.query(`select pg_advisory_lock(${moveLockSql(options.tenantId)})`);
    locked = true;
    const frozenAt = performance.now();
    options.failAt?.('frozen');
    const rows = await finalDelta(options, tables);
    await options.onPhase('switching');
    options.failAt?.('switching');
    // Moved-out first: if the flip then fails, clearing the mark gives the source back; if the
    // process dies in between, writers are refused (503) rather than written where nobody reads.
    await markMovedOut(lock, options.tenantId);
    await options.flip();
    const freezeMs = Math.round(performance.now() - frozenAt);
    await lock.query(`select pg_advisory_unlock(${moveLockSql(options.tenantId)})`);
    locked = false;
    return { freezeMs, rows };
  } finally {
    // A lock still held means a failure: the session ends with its lock when the client is destroyed.
    lock.release(locked ? new Error('freeze abandoned') : undefined);
  }
}

async function purgeSource(options: MoveOptions, tables: readonly TenantTable[]): Promise<boolean> {
  await options.onPhase('purging_source');
  await new Promise((resolve) => setTimeout(resolve, options.purgeGraceMs ?? tenantDataLimits.purgeGraceMs));
  for (let attempt = 1; attempt <= 3; attempt += 1) {
    try {
      await purgeTenantRows(options.source, options.tenantId, tables);
      return true;
    } catch (error) {
      options.log.error({ err: error, tenantId: options.tenantId, attempt }, 'purging the source after a move failed');
    }
  }
  return false;
}

export async function moveTenantRows(options: MoveOptions): Promise<MoveResult> {
  const startedAt = performance.now();
  let tables: TenantTable[] | null = null;
  let switched = false;
  try {
    await options.onPhase('preparing');
    options.failAt?.('preparing');
    tables = await prepare(options);
    await options.onPhase('copying');
    const copied = await bulkCopy(options, tables);
    await analyzeFilled(options, tables, copied);
    options.failAt?.('copying');
    await options.onPhase('catching_up');
    options.failAt?.('catching_up');
    const caughtUp = await catchUp(options, tables);
    const frozen = await freezeAndSwitch(options, tables);
    switched = true;
    const sourcePurged = await purgeSource(options, tables);
    const rowsCopied = Object.values(copied).reduce((sum, count) => sum + count, 0);
    const result: MoveResult = {
      moved: true,
      rowsCopied,
      rowsCaughtUp: caughtUp.rowsCaughtUp + frozen.rows,
      catchUpRounds: caughtUp.rounds,
      freezeMs: frozen.freezeMs,
      durationMs: Math.round(performance.now() - startedAt),
      tables: copied,
      sourcePurged,
    };
    options.log.info({ tenantId: options.tenantId, ...result, tables: undefined }, 'tenant moved');
    return result;
  } catch (error) {
    if (!switched) {
      options.log.warn({ err: error, tenantId: options.tenantId }, 'tenant move failed; rolling back to the source');
      await rollBack(options, tables);
    }
    throw error;
  }
}
