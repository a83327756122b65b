import type pg from 'pg';
import type { Logger } from 'pino';

/**
 * Logs the connection failures of a pool's clients instead of letting them end the process.
 *
 * pg-pool listens for errors only on idle clients: it drops such a client and re-emits the
 * error on the pool. A checked-out client's own 'error' event has no listener, so when the
 * server ends its session mid-use — a restart, a failover, an administrator's
 * pg_terminate_backend, a session timeout — the event would be unhandled and take the whole
 * process down, every other firm's requests with it. With a listener on every client the
 * caller just sees its query fail (a tenant scope then rolls back and answers 500), and the
 * pool discards the client when it is released, since it is no longer queryable.
 */
export function logConnectionErrors(pool: pg.Pool, log: Logger, context: Record<string, string>): void {
  pool.on('connect', (client) => {
    client.on('error', (error) => log.warn({ err: error, ...context }, 'database connection failed'));
  });
  // An idle client's failure reaches both: the client's listener above has logged it.
  pool.on('error', () => {});
}
