import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUnthrottledTenant, startTestStack, type TestStack, type TestTenant } from '../../../test/harness.ts';
import type { TenantContext, TenantDb } from '../../platform/database/tenant-scope.ts';
import { newUuid, parseId } from '../../platform/ids.ts';
import { tenantContextOf } from '../../tenancy/tenancy.service.ts';
import { createBooks, post, type TestBooks, twoLine } from '../ledger.test-support.ts';

/**
 * The ledger's rules held by the database itself, proven with raw SQL inside a real tenant
 * scope (the runtime role, as application code would run it), bypassing every code-level
 * check: no UPDATE/DELETE/TRUNCATE of posted rows, no lines added to an entry later, no
 * unbalanced entry at commit, no posting into a closed period, no self-approval, and no
 * account of another entity on a line.
 */
let stack: TestStack;
let firm: TestTenant;
let context: TenantContext;
let books: TestBooks;
let entryId: string;
let entityId: string;

const uuid = (id: string | undefined) => parseId(id?.startsWith('acc_') ? 'account' : 'entity', id ?? '') ?? '';

beforeAll(async () => {
  stack = await startTestStack();
  firm = await createUnthrottledTenant(stack.app, 'Database Rules');
  const record = await stack.platform.tenancy.getTenant(parseId('tenant', firm.id) ?? '');
  if (!record) throw new Error('tenant missing');
  context = tenantContextOf(record);
  books = await createBooks(stack, firm);
  entityId = uuid(books.entityId);
  const posted = await post(stack, books, twoLine(books, '2026-02-10', '1010', '4000', 5_000));
  entryId = parseId('journalEntry', posted.json<{ id: string }>().id) ?? '';
});

afterAll(async () => {
  await stack?.close();
});

async function inScope<T>(work: (db: TenantDb) => Promise<T>): Promise<T> {
  return await stack.platform.scopes.run(context, work);
}

async function userId(): Promise<string> {
  return await inScope(
    async (db) => (await db.query<{ id: string }>('select id from users limit 1')).rows[0]?.id ?? '',
  );
}

/** Inserts an entry and its lines by hand; `lines` are [accountNumber, side, amount]. */
async function rawEntry(db: TenantDb, date: string, lines: Array<[string, string, number]>, declared = lines.length) {
  const id = newUuid();
  await db.query(
    `insert into journal_entries (tenant_id, entity_id, id, entry_date, kind, entry_class, line_count, created_by)
     values ($1, $2, $3, $4, 'standard', 'unadjusted', $5, $6)`,
    [db.tenantId, entityId, id, date, declared, await userId()],
  );
  let lineNo = 1;
  for (const [number, side, amount] of lines) {
    await db.query(
      `insert into journal_lines (tenant_id, entity_id, entry_id, line_no, account_id, entry_date, entry_class, side,
                                  amount_minor, currency, currency_exponent, exchange_rate, base_amount_minor)
       values ($1, $2, $3, $4, $5, $6, 'unadjusted', $7, $8, 'USD', 2, 1, $8)`,
      [db.tenantId, entityId, id, lineNo++, uuid(books.accounts[number]), date, side, amount],
    );
  }
  return id;
}

describe('append-only', () => {
  for (const statement of [
    'update journal_entries set memo = $2 where id = $1',
    'delete from journal_entries where id = $1',
    'update journal_lines set amount_minor = amount_minor + 1 where entry_id = $1',
    'delete from journal_lines where entry_id = $1',
  ]) {
    it(`refuses "${statement.split(' where')[0]}" on a posted entry`, async () => {
      const params = statement.includes('$2') ? [entryId, 'tampered'] : [entryId];
      await expect(inScope((db) => db.query(statement, params))).rejects.toMatchObject({
        code: expect.stringMatching(/^(CH003|42501)$/),
      });
    });
  }

  it('refuses UPDATE and DELETE even to the table owner, by trigger', async () => {
    // The owner role bypasses grants but not triggers; FORCE RLS hides rows, so set the tenant first.
    const client = await stack.platform.ownerPool.connect();
    try {
      await client.query('begin');
      await client.query(`select set_config('app.tenant_id', $1, true), set_config('app.entity_scope', '*', true)`, [
        context.tenantId,
      ]);
      await expect(
        client.query('update journal_lines set amount_minor = 1 where entry_id = $1', [entryId]),
      ).rejects.toMatchObject({
        code: 'CH003',
        message: 'LEDGER_APPEND_ONLY',
      });
    } finally {
      await client.query('rollback');
      client.release();
    }
    await expect(stack.platform.ownerPool.query('truncate journal_lines')).rejects.toMatchObject({ code: 'CH003' });
  });

  it('refuses adding a balanced pair of lines to an entry posted earlier', async () => {
    const attempt = inScope(async (db) => {
      for (const [lineNo, side] of [
        [90, 'debit'],
        [91, 'credit'],
      ] as const) {
        await db.query(
          `insert into journal_lines (tenant_id, entity_id, entry_id, line_no, account_id, entry_date, entry_class, side,
                                      amount_minor, currency, currency_exponent, exchange_rate, base_amount_minor)
           values ($1, $2, $3, $4, $5, '2026-02-10', 'unadjusted', $6, 1, 'USD', 2, 1, 1)`,
          [db.tenantId, entityId, entryId, lineNo, uuid(books.accounts['1010']), side],
        );
      }
    });
    await expect(attempt).rejects.toMatchObject({ code: 'CH003', message: 'LEDGER_APPEND_ONLY' });
  });
});

describe('entity scope', () => {
  it("hides ledger rows of entities outside the caller's entity scope, and refuses writing them", async () => {
    const sibling = await createBooks(stack, firm);
    const narrow: TenantContext = { ...context, entityScope: { kind: 'only', entityIds: [uuid(sibling.entityId)] } };
    const seen = await stack.platform.scopes.run(narrow, async (db) => {
      const { rows } = await db.query<{ entity_id: string }>(
        'select distinct entity_id from journal_lines union select distinct entity_id from accounts',
      );
      return rows.map((row) => row.entity_id);
    });
    expect(seen).not.toContain(entityId);
    const write = stack.platform.scopes.run(narrow, async (db) =>
      db.query(
        `insert into periods (tenant_id, entity_id, period_month, fiscal_year, period_number) values ($1, $2, '2030-01-01', 2030, 1)`,
        [db.tenantId, entityId],
      ),
    );
    await expect(write).rejects.toMatchObject({ code: '42501' });
  });
});

describe('balance and locks at commit', () => {
  it('refuses an unbalanced entry at commit, and one missing lines', async () => {
    await expect(
      inScope((db) =>
        rawEntry(db, '2026-02-11', [
          ['1010', 'debit', 100],
          ['4000', 'credit', 99],
        ]),
      ),
    ).rejects.toMatchObject({ code: 'CH002', message: 'LEDGER_ENTRY_UNBALANCED' });
    await expect(
      inScope((db) =>
        rawEntry(
          db,
          '2026-02-11',
          [
            ['1010', 'debit', 100],
            ['4000', 'credit', 100],
          ],
          3,
        ),
      ),
    ).rejects.toMatchObject({ code: 'CH002', message: 'LEDGER_ENTRY_TOO_FEW_LINES' });
    // Control: the same insert, balanced, commits.
    await expect(
      inScope((db) =>
        rawEntry(db, '2026-02-11', [
          ['1010', 'debit', 100],
          ['4000', 'credit', 100],
        ]),
      ),
    ).resolves.toBeTypeOf('string');
  });

  it('checks every entry a statement inserts at commit, and keeps its queue of checks from the tenant', async () => {
    // One statement, three entries: the commit check runs once for all of them (0029).
    const threeEntries = (ids: string[], secondCredit: number) =>
      inScope(async (db) => {
        await db.query(
          `insert into journal_entries (tenant_id, entity_id, id, entry_date, kind, entry_class, line_count, created_by)
           select $1, $2, id, '2026-02-14', 'standard', 'unadjusted', 2, $4 from unnest($3::uuid[]) as id`,
          [db.tenantId, entityId, ids, await userId()],
        );
        await db.query(
          `insert into journal_lines (tenant_id, entity_id, entry_id, line_no, account_id, entry_date, entry_class, side,
                                      amount_minor, currency, currency_exponent, exchange_rate, base_amount_minor)
           select $1, $2, line.entry_id, line.line_no, line.account_id, '2026-02-14', 'unadjusted', line.side,
                  line.amount, 'USD', 2, 1, line.amount
             from unnest($3::uuid[], $4::smallint[], $5::uuid[], $6::text[], $7::bigint[])
                    as line(entry_id, line_no, account_id, side, amount)`,
          [
            db.tenantId,
            entityId,
            ids.flatMap((id) => [id, id]),
            [1, 2, 1, 2, 1, 2],
            ids.flatMap(() => [uuid(books.accounts['1010']), uuid(books.accounts['4000'])]),
            ids.flatMap(() => ['debit', 'credit']),
            [100, 100, 200, secondCredit, 300, 300],
          ],
        );
      });
    const unbalanced = [newUuid(), newUuid(), newUuid()];
    await expect(threeEntries(unbalanced, 199)).rejects.toMatchObject({
      code: 'CH002',
      message: 'LEDGER_ENTRY_UNBALANCED',
      detail: `entry ${unbalanced[1]} does not balance in USD`,
    });
    const posted = [newUuid(), newUuid(), newUuid()];
    await threeEntries(posted, 200);
    const counted = await inScope(async (db) => {
      const { rows } = await db.query<{ count: string }>(
        'select count(*) from journal_entries where id = any ($1::uuid[])',
        [posted],
      );
      return Number(rows[0]?.count);
    });
    expect(counted).toBe(3);
    // A passed check removes itself; the tenant scope can neither read, add to nor empty the queue.
    const queued = await stack.platform.ownerPool.query<{ count: string }>(
      'select count(*) from ledger_balance_checks',
    );
    expect(Number(queued.rows[0]?.count)).toBe(0);
    for (const statement of [
      'select count(*) from ledger_balance_checks',
      'delete from ledger_balance_checks',
      `insert into ledger_balance_checks (entries_tenant, entry_ids, entity_ids, entry_dates, line_counts)
       values (gen_random_uuid(), '{}', '{}', '{}', '{}')`,
    ]) {
      await expect(
        inScope((db) => db.query(statement)),
        statement,
      ).rejects.toMatchObject({ code: '42501' });
    }
  });

  it('refuses a line beyond the declared count, even after the balance check was forced early', async () => {
    const sneak = (lineNo: number) =>
      inScope(async (db) => {
        const id = await rawEntry(db, '2026-02-12', [
          ['1010', 'debit', 100],
          ['4000', 'credit', 100],
        ]);
        // The deferred balance check fires now, on two balanced lines, and not again at commit.
        await db.query('set constraints all immediate');
        await db.query(
          `insert into journal_lines (tenant_id, entity_id, entry_id, line_no, account_id, entry_date, entry_class,
                                      side, amount_minor, currency, currency_exponent, exchange_rate, base_amount_minor)
           values ($1, $2, $3, $4, $5, '2026-02-12', 'unadjusted', 'debit', 777, 'USD', 2, 1, 777)`,
          [db.tenantId, entityId, id, lineNo, uuid(books.accounts['6000'])],
        );
      });
    for (const lineNo of [3, 40]) {
      await expect(sneak(lineNo), `line ${lineNo}`).rejects.toMatchObject({
        code: 'CH003',
        message: 'LEDGER_APPEND_ONLY',
      });
    }
  });

  it('refuses a raw posting dated in a closed period', async () => {
    const own = await createBooks(stack, firm);
    const closed = await stack.app.inject({
      method: 'POST',
      url: `/v1/entities/${own.entityId}/periods/2026-02/close`,
      headers: firm.auth,
    });
    expect(closed.statusCode).toBe(200);
    const ownEntity = uuid(own.entityId);
    const attempt = inScope(async (db) =>
      db.query(
        `insert into journal_entries (tenant_id, entity_id, id, entry_date, kind, entry_class, line_count, created_by)
         values ($1, $2, $3, '2026-02-28', 'standard', 'unadjusted', 2, $4)`,
        [db.tenantId, ownEntity, newUuid(), await userId()],
      ),
    );
    await expect(attempt).rejects.toMatchObject({ code: 'CH001', message: 'LEDGER_PERIOD_CLOSED' });
  });

  it("refuses a line on another entity's account", async () => {
    const sibling = await createBooks(stack, firm);
    const attempt = inScope(async (db) => {
      const id = newUuid();
      await db.query(
        `insert into journal_entries (tenant_id, entity_id, id, entry_date, kind, entry_class, line_count, created_by)
         values ($1, $2, $3, '2026-02-12', 'standard', 'unadjusted', 2, $4)`,
        [db.tenantId, entityId, id, await userId()],
      );
      await db.query(
        `insert into journal_lines (tenant_id, entity_id, entry_id, line_no, account_id, entry_date, entry_class, side,
                                    amount_minor, currency, currency_exponent, exchange_rate, base_amount_minor)
         values ($1, $2, $3, 1, $4, '2026-02-12', 'unadjusted', 'debit', 1, 'USD', 2, 1, 1)`,
        [db.tenantId, entityId, id, uuid(sibling.accounts['1010'])],
      );
    });
    await expect(attempt).rejects.toMatchObject({ code: 'CH004', message: 'LEDGER_ACCOUNT_UNKNOWN' });
  });

  it('checks every line of a many-line statement: foreign accounts counted per line, any wrong date refused', async () => {
    // The statement check looks up each distinct account and entry once (0019); its refusal
    // still counts the lines that name a foreign account, and one bad line among many is found.
    const sibling = await createBooks(stack, firm);
    const manyLines = (accounts: string[], dates: string[]) =>
      inScope(async (db) => {
        const id = newUuid();
        await db.query(
          `insert into journal_entries (tenant_id, entity_id, id, entry_date, kind, entry_class, line_count, created_by)
           values ($1, $2, $3, '2026-02-13', 'standard', 'unadjusted', $4, $5)`,
          [db.tenantId, entityId, id, accounts.length, await userId()],
        );
        await db.query(
          `insert into journal_lines (tenant_id, entity_id, entry_id, line_no, account_id, entry_date, entry_class, side,
                                      amount_minor, currency, currency_exponent, exchange_rate, base_amount_minor)
           select $1, $2, $3, line.no, line.account_id, line.entry_date, 'unadjusted',
                  case when line.no % 2 = 1 then 'debit' else 'credit' end, 1, 'USD', 2, 1, 1
             from unnest($4::uuid[], $5::date[]) with ordinality as line(account_id, entry_date, no)`,
          [db.tenantId, entityId, id, accounts, dates],
        );
      });
    const own = uuid(books.accounts['1010']);
    const foreign = uuid(sibling.accounts['1010']);
    await expect(manyLines([own, foreign, own, foreign], Array(4).fill('2026-02-13'))).rejects.toMatchObject({
      code: 'CH004',
      message: 'LEDGER_ACCOUNT_UNKNOWN',
      detail: "2 line(s) name an account that is not in the entry's entity",
    });
    await expect(
      manyLines([own, own, own, own], ['2026-02-13', '2026-02-13', '2026-02-14', '2026-02-13']),
    ).rejects.toMatchObject({ code: 'CH003', message: 'LEDGER_APPEND_ONLY' });
    await expect(manyLines([own, own, own, own], Array(4).fill('2026-02-13'))).resolves.toBeUndefined();
  });

  it('refuses an adjustment approved by its preparer', async () => {
    const me = await userId();
    const attempt = inScope((db) =>
      db.query(
        `insert into adjustments (tenant_id, entity_id, id, status, entry_date, kind, lines, prepared_by, approved_by)
         values ($1, $2, $3, 'approved', '2026-02-28', 'adjusting', '[]', $4, $4)`,
        [db.tenantId, entityId, newUuid(), me],
      ),
    );
    await expect(attempt).rejects.toMatchObject({ code: '23514' });
  });
});
