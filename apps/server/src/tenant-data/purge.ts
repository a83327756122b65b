import type pg from 'pg';
import { inTenantMaintenance, tenantFilter } from './maintenance.ts';
import { tenantDataLimits } from './tenant-data.limits.ts';
import { quoteIdentifier, type TenantTable } from './tenant-tables.ts';

/**
 * Deletes one tenant's rows from the given tables of one database, children first, in batches
 * of short transactions so other tenants of a shared database never wait long on a lock.
 * Runs in replica mode (maintenance.ts): the journal's append-only triggers stand aside, and
 * foreign-key actions do not fire, which is why every table is purged explicitly. Returns the
 * rows deleted per table. Safe to run again after a crash: it continues where it stopped.
 */
export async function purgeTenantRows(
  pool: pg.Pool,
  tenantId: string,
  tables: readonly TenantTable[],
  signal?: AbortSignal,
): Promise<Record<string, number>> {
  const deleted: Record<string, number> = {};
  for (const table of [...tables].reverse()) {
    deleted[table.name] = 0;
    const sql = `delete from ${quoteIdentifier(table.name)}
                  where ctid = any(array(select ctid from ${quoteIdentifier(table.name)}
                                          where ${tenantFilter(table, tenantId)} limit ${tenantDataLimits.purgeBatchRows}))`;
    for (;;) {
      signal?.throwIfAborted();
      const count = await inTenantMaintenance(pool, tenantId, { replica: true }, async (client) => {
        const result = await client.query(sql);
        return result.rowCount ?? 0;
      });
      deleted[table.name] = (deleted[table.name] ?? 0) + count;
      if (count < tenantDataLimits.purgeBatchRows) break;
    }
  }
  return deleted;
}

/** Rows the tenant still has per table (0 after a purge); the move and purge tests read it. */
export async function countTenantRows(
  pool: pg.Pool,
  tenantId: string,
  tables: readonly TenantTable[],
): Promise<Record<string, number>> {
  return await inTenantMaintenance(pool, tenantId, { replica: false, readOnly: true }, async (client) => {
    const counts: Record<string, number> = {};
    for (const table of tables) {
      const { rows } = await client.query<{ count: string }>(
        `select count(*) as count from ${quoteIdentifier(table.name)} where ${tenantFilter(table, tenantId)}`,
      );
      counts[table.name] = Number(rows[0]?.count ?? 0);
    }
    return counts;
  });
}
