import type pg from 'pg';
import type { RequestOrigin } from '../platform/database/tenant-scope.ts';
import type { AuditDb } from './audit.store.ts';

/** An owner-role transaction set to one tenant, carrying the origin of the change for the audit log. */
export interface OwnerTenantDb extends AuditDb {
  readonly origin: RequestOrigin;
}

/**
 * Runs `work` in one owner-role transaction with `app.tenant_id` set to the tenant, so a
 * control-plane change (a plan override, a suspension) and its audit event commit together.
 * The tenant is named explicitly: statements must still say `where tenant_id = …`, since an
 * owner that is superuser or BYPASSRLS skips row-level security.
 */
export async function runOwnerTenantTransaction<T>(
  ownerPool: pg.Pool,
  tenantId: string,
  origin: RequestOrigin,
  work: (db: OwnerTenantDb) => Promise<T>,
): Promise<T> {
  const client = await ownerPool.connect();
  let released = false;
  try {
    await client.query('begin');
    await client.query(`select set_config('app.tenant_id', $1, true)`, [tenantId]);
    const result = await work({ tenantId, origin, query: (sql, params) => client.query(sql, params) });
    await client.query('commit');
    return result;
  } catch (error) {
    await client.query('rollback').catch((rollbackError: unknown) => {
      client.release(rollbackError instanceof Error ? rollbackError : true);
      released = true;
    });
    throw error;
  } finally {
    if (!released) client.release();
  }
}
