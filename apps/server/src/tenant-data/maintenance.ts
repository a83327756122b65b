import type pg from 'pg';
import { assert } from '../platform/assert.ts';
import { inTransaction } from '../platform/database/transaction.ts';
import { tenantDataLimits } from './tenant-data.limits.ts';
import { keyList, quoteIdentifier, quoteLiteral, type TenantTable } from './tenant-tables.ts';

/**
 * Owner-role work on one tenant's rows: purges, moves and exports. The owner may bypass RLS
 * (a superuser on an external server) or not (the embedded owner is NOBYPASSRLS and the tables
 * FORCE it), so every statement here names the tenant explicitly AND the transaction sets
 * app.tenant_id and app.entity_scope, which makes the RLS policies agree either way.
 *
 * `replica` switches triggers and foreign-key checks off for this transaction only
 * (session_replication_role = replica). That is how a purge removes append-only journal rows
 * (the journal's triggers refuse DELETE even for the owner) and how a move copies rows that the
 * ledger's insert checks would refuse a second time (a line must be posted in its entry's own
 * transaction). It is deliberate and narrow: only this module sets it, only for one tenant's
 * rows, and only a role PostgreSQL lets set it (a superuser, or an owner granted
 * `SET ON PARAMETER session_replication_role`). Moves verify the copy with checksums instead.
 */
export interface MaintenanceOptions {
  replica: boolean;
  isolation?: 'read committed' | 'repeatable read';
  readOnly?: boolean;
}

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function checkedTenantUuid(tenantId: string): string {
  assert(uuidPattern.test(tenantId), 'tenant id is a uuid');
  return tenantId;
}

/**
 * Row text must render identically on both sides of a move (checksums), whatever the server
 * defaults. 'GMT' rather than 'UTC': PostgreSQL knows GMT without its time-zone files, and a
 * parallel worker of the embedded server failed to load 'UTC' from them. Parallel plans are off
 * as well: on a small server they only add workers competing with the tenants' own queries.
 */
async function setSessionFormats(client: pg.ClientBase): Promise<void> {
  await client.query(
    `select set_config('timezone', 'GMT', true), set_config('datestyle', 'ISO, MDY', true),
            set_config('max_parallel_workers_per_gather', '0', true),
            set_config('intervalstyle', 'postgres', true), set_config('extra_float_digits', '1', true),
            set_config('bytea_output', 'hex', true)`,
  );
}

export async function beginTenantMaintenance(
  client: pg.ClientBase,
  tenantId: string,
  options: MaintenanceOptions,
): Promise<void> {
  const isolation = options.isolation ?? 'read committed';
  await client.query(`begin isolation level ${isolation}${options.readOnly ? ' read only' : ''}`);
  await client.query(
    `select set_config('app.tenant_id', $1, true), set_config('app.entity_scope', '*', true),
            set_config('statement_timeout', $2, true)`,
    [checkedTenantUuid(tenantId), String(tenantDataLimits.maintenanceStatementTimeoutMs)],
  );
  await setSessionFormats(client);
  if (options.replica) await client.query(`select set_config('session_replication_role', 'replica', true)`);
}

/** Runs `work` in one maintenance transaction on a client of its own; commits or rolls back. */
export async function inTenantMaintenance<T>(
  pool: pg.Pool,
  tenantId: string,
  options: MaintenanceOptions,
  work: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  return await inTransaction(pool, work, (client) => beginTenantMaintenance(client, tenantId, options));
}

export class MaintenanceNotPermittedError extends Error {
  override name = 'MaintenanceNotPermittedError';
}

/** Refuses early, with the fix in the message, when the owner may not switch triggers off. */
export async function assertMaintenancePermitted(pool: pg.Pool): Promise<void> {
  const { rows } = await pool.query<{ allowed: boolean; role: string }>(
    `select current_user::text as role,
            (select rolsuper from pg_roles where rolname = current_user)
            or has_parameter_privilege('session_replication_role', 'SET') as allowed`,
  );
  const row = rows[0];
  if (row?.allowed) return;
  throw new MaintenanceNotPermittedError(
    `the owner role ${row?.role ?? '?'} may not set session_replication_role; as a superuser run ` +
      `GRANT SET ON PARAMETER session_replication_role TO ${quoteIdentifier(row?.role ?? 'owner')} (docs/offboarding.md)`,
  );
}

/** The WHERE clause naming the tenant, inline (COPY takes no parameters); the id is checked first. */
export function tenantFilter(table: TenantTable, tenantId: string): string {
  return `${quoteIdentifier(table.tenantColumn)} = ${quoteLiteral(checkedTenantUuid(tenantId))}::uuid`;
}

/** ORDER BY the primary key, or by every column for a keyless control-plane table. */
export function rowOrder(table: TenantTable): string {
  return table.key.length > 0 ? keyList(table) : table.columns.map(quoteIdentifier).join(', ');
}
