import { Writable } from 'node:stream';
import pg from 'pg';
import pino from 'pino';
import { describe, expect, inject, it } from 'vitest';
import { logClientErrors } from './pool-errors.ts';

/** A logger whose lines land in `lines`, parsed. */
function capturingLogger(lines: Record<string, unknown>[]) {
  const sink = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  return pino({ level: 'warn' }, sink);
}

describe('logClientErrors', () => {
  it('keeps the process up when the server ends a lone client’s session: the query fails and the loss is logged', async () => {
    const lines: Record<string, unknown>[] = [];
    const client = new pg.Client({ connectionString: inject('ownerUrl') });
    logClientErrors(client, capturingLogger(lines), { client: 'test' });
    await client.connect();
    // Without a listener the client's 'error' event is an uncaught exception, which vitest
    // reports as a failed run even when the query's own rejection is handled.
    await expect(client.query('select pg_terminate_backend(pg_backend_pid())')).rejects.toThrow();
    await expect(client.query('select 1')).rejects.toThrow();
    await client.end().catch(() => {});
    await expect
      .poll(() => lines.map((line) => [line.msg, line.client]))
      .toContainEqual(['database connection failed', 'test']);
  });
});
