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
  pool.on('connect', (client) => logClientErrors(client, log, context));
  // An idle client's failure reaches both: the client's listener above has logged it.
  pool.on('error', () => {});
}

/**
 * The same for a client of our own, outside any pool: its failure fails the query in flight
 * (or the next one), and is logged instead of ending the process.
 */
export function logClientErrors(client: pg.ClientBase, log: Logger, context: Record<string, string>): void {
  client.on('error', (error) => log.warn({ err: error, ...context }, 'database connection failed'));
}
