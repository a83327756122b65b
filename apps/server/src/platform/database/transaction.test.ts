import { randomBytes } from 'node:crypto';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { logConnectionErrors } from './pool-errors.ts';
import { inTransaction } from './transaction.ts';

describe('inTransaction', () => {
  const table = `transaction_test_${randomBytes(4).toString('hex')}`;
  let pool: pg.Pool;

  const names = async () =>
    (await pool.query<{ name: string }>(`select name from ${table} order by name`)).rows.map((row) => row.name);

  beforeAll(async () => {
    pool = new pg.Pool({ connectionString: inject('ownerUrl'), max: 1 });
    logConnectionErrors(pool, pino({ level: 'silent' }), {});
    await pool.query(`create table ${table} (name text primary key)`);
  });

  afterAll(async () => {
    await pool.query(`drop table if exists ${table}`);
    await pool.end();
  });

  it('commits what the work wrote when it returns, and returns its result', async () => {
    const result = await inTransaction(pool, async (client) => {
      await client.query(`insert into ${table} values ('kept')`);
      return 'done';
    });
    expect(result).toBe('done');
    expect(await names()).toEqual(['kept']);
  });

  it('rolls back everything the work wrote when it throws, and rethrows', async () => {
    const failure = inTransaction(pool, async (client) => {
      await client.query(`insert into ${table} values ('dropped')`);
      throw new Error('refused');
    });
    await expect(failure).rejects.toThrow('refused');
    expect(await names()).toEqual(['kept']);
    // The connection went back clean: no transaction left open on it.
    const { rows } = await pool.query<{ open: boolean }>(`select now() <> statement_timestamp() as open`);
    expect(rows).toEqual([{ open: false }]);
  });

  it('opens the transaction with the begin it is given', async () => {
    const isolation = await inTransaction(
      pool,
      async (client) =>
        (await client.query<{ level: string }>(`select current_setting('transaction_isolation') as level`)).rows[0]
          ?.level,
      (client) => client.query('begin isolation level repeatable read'),
    );
    expect(isolation).toBe('repeatable read');
  });

  it('discards a connection whose rollback failed instead of returning it to the pool', async () => {
    let firstPid = 0;
    const failure = inTransaction(pool, async (client) => {
      firstPid = (await client.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]?.pid ?? 0;
      // The server ends this session: the statement fails, and so does the rollback after it.
      await client.query('select pg_terminate_backend(pg_backend_pid())');
    });
    await expect(failure).rejects.toThrow();
    expect(pool.totalCount).toBe(0);
    const { rows } = await pool.query<{ pid: number }>('select pg_backend_pid() as pid');
    expect(rows[0]?.pid).not.toBe(firstPid);
  });
});
