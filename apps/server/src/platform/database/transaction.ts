import type pg from 'pg';

/**
 * Runs `work` in one transaction on a connection of `pool`, for control-plane work outside a
 * tenant scope (tenant data goes through TenantScopes): commits when `work` returns, rolls back
 * when it throws. A connection whose rollback failed is in an unknown state, so it is
 * discarded rather than returned to the pool. Returning without writing commits nothing, so
 * `work` may simply return when it finds there is nothing to do. `begin` opens the transaction
 * (a plain BEGIN unless given: tenant maintenance sets its isolation and settings).
 */
export async function inTransaction<T>(
  pool: pg.Pool,
  work: (client: pg.PoolClient) => Promise<T>,
  begin: (client: pg.PoolClient) => Promise<unknown> = (client) => client.query('begin'),
): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await begin(client);
    const result = await work(client);
    await client.query('commit');
    return result;
  } catch (error) {
    await client.query('rollback').catch((rollbackError: unknown) => {
      broken = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
    });
    throw error;
  } finally {
    client.release(broken);
  }
}
