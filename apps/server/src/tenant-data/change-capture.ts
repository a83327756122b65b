import type pg from 'pg';
import { assert } from '../platform/assert.ts';
import { checkedTenantUuid } from './maintenance.ts';
import { tenantDataLimits } from './tenant-data.limits.ts';
import { quoteIdentifier, quoteLiteral, type TenantTable } from './tenant-tables.ts';

/**
 * Change capture on the source of a move (0012_lifecycle_move.sql). The mover installs three
 * statement-level triggers per tenant table (idempotent, so a table added by a later migration
 * is covered by the next move), activates the move for the tenant, and from then on every
 * write of that tenant records its rows' primary keys in `tenant_move_changes`. The catch-up
 * re-reads those rows from the source and applies them to the target.
 *
 * The triggers stay installed after the move: with no move active on the database they cost one
 * probe of an empty table per write statement, and removing them would race other moves.
 */
const events = [
  { name: 'insert', event: 'insert', referencing: 'new table as changed_rows' },
  { name: 'update', event: 'update', referencing: 'new table as changed_rows old table as previous_rows' },
  { name: 'delete', event: 'delete', referencing: 'old table as changed_rows' },
] as const;

/** The lock key the freeze takes exclusively and writers take shared (tenant_move_admit). */
export function moveLockSql(tenantId: string): string {
  return `hashtextextended('tenant-move:' || ${quoteLiteral(checkedTenantUuid(tenantId))}, 0)`;
}

export async function installCapture(client: pg.ClientBase, tables: readonly TenantTable[]): Promise<void> {
  // DDL waits for writers in flight on each table; bounded, so a stuck transaction fails the move early.
  await client.query(`set lock_timeout = ${tenantDataLimits.freezeLockWaitMs}`);
  try {
    for (const table of tables) {
      assert(table.key.length > 0, `table ${table.name} has no primary key to capture changes by`);
      const keyArguments = table.key.map(quoteLiteral).join(', ');
      for (const { name, event, referencing } of events) {
        await client.query(
          `create or replace trigger ${quoteIdentifier(`tenant_move_capture_${name}`)}
             after ${event} on ${quoteIdentifier(table.name)}
             referencing ${referencing}
             for each statement execute function tenant_move_capture(${keyArguments})`,
        );
      }
    }
  } finally {
    await client.query('reset lock_timeout');
  }
}

/**
 * Activates capture for the tenant, then waits until every transaction that was already running
 * has ended: such a transaction may have written before it could see the activation, and the
 * bulk copy's snapshot must include its rows. Returns once the copy's snapshot may be taken.
 */
export async function activateCapture(pool: pg.Pool, tenantId: string, changeId: string): Promise<void> {
  await pool.query(
    `insert into tenant_moves_active (tenant, change_id) values ($1, $2)
     on conflict (tenant) do update set change_id = excluded.change_id, moved_out = false, started_at = now()`,
    [checkedTenantUuid(tenantId), changeId],
  );
  await pool.query('delete from tenant_move_changes where tenant = $1', [tenantId]);
  // A snapshot's xmax is one past the latest *completed* xid, so a running writer may lie beyond
  // it; an xid assigned now is above every xid assigned before the activation committed.
  const { rows } = await pool.query<{ horizon: string }>('select pg_current_xact_id()::text as horizon');
  const horizon = rows[0]?.horizon;
  assert(horizon !== undefined, 'no snapshot horizon');
  const deadline = Date.now() + tenantDataLimits.oldTransactionsWaitMs;
  for (;;) {
    const { rows: oldest } = await pool.query<{ done: boolean }>(
      `select pg_snapshot_xmin(pg_current_snapshot()) >= $1::xid8 as done`,
      [horizon],
    );
    if (oldest[0]?.done) return;
    if (Date.now() > deadline) {
      throw new Error('transactions older than the move are still running; try again later');
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Ends capture for the tenant on this database (rollback, or after the source is purged). */
export async function deactivateCapture(pool: pg.Pool, tenantId: string): Promise<void> {
  await pool.query('delete from tenant_moves_active where tenant = $1', [checkedTenantUuid(tenantId)]);
  await pool.query('delete from tenant_move_changes where tenant = $1', [tenantId]);
}

/**
 * Marks the tenant as moved out of this database: its writers still routed here (a stale
 * registry cache on another instance) are refused with 503 TENANT_MOVING and retry against the
 * new placement. The marker stays after the source is purged; a move back in clears it.
 */
export async function markMovedOut(client: pg.ClientBase, tenantId: string): Promise<void> {
  await client.query('update tenant_moves_active set moved_out = true where tenant = $1', [
    checkedTenantUuid(tenantId),
  ]);
  await client.query('delete from tenant_move_changes where tenant = $1', [tenantId]);
}

export interface CapturedChange {
  seq: string;
  table: string;
  key: Record<string, unknown>;
}

/**
 * Every change of the tenant not yet applied, read inside the catch-up's snapshot. There is no
 * watermark: sequence numbers are taken at insert and committed out of order, so a round
 * reads whatever is left and the applied rows are deleted afterwards (forgetChanges).
 */
export async function readChanges(client: pg.ClientBase, tenantId: string): Promise<CapturedChange[]> {
  const { rows } = await client.query<{ seq: string; table_name: string; row_key: Record<string, unknown> }>(
    `select seq::text, table_name, row_key from tenant_move_changes where tenant = $1 order by seq`,
    [checkedTenantUuid(tenantId)],
  );
  return rows.map((row) => ({ seq: row.seq, table: row.table_name, key: row.row_key }));
}

/** Deletes changes once their rows are committed on the target; re-applying one is harmless. */
export async function forgetChanges(
  pool: pg.Pool,
  tenantId: string,
  changes: readonly CapturedChange[],
): Promise<void> {
  if (changes.length === 0) return;
  await pool.query('delete from tenant_move_changes where tenant = $1 and seq = any($2::bigint[])', [
    checkedTenantUuid(tenantId),
    changes.map((change) => change.seq),
  ]);
}
