import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTenant,
  dropTenantDatabases,
  startTestStack,
  type TestStack,
  type TestTenant,
  uniqueName,
} from '../../../test/harness.ts';
import { seedIdentityCanary } from '../../identity/identity.test-support.ts';
import { seedLedgerCanary } from '../../ledger/ledger.test-support.ts';
import { tenantContextOf } from '../../tenancy/tenancy.service.ts';
import { newUuid, parseId } from '../ids.ts';
import type { TenantContext } from './tenant-scope.ts';

/**
 * The isolation canary, at the SQL level: two firms with rows in every tenant table, then
 * raw statements without any WHERE clause through the runtime role, inside one firm's
 * scope and with no scope at all. Row-level security alone must keep the firms apart.
 * Tenant tables are discovered from the catalog, so a new table is covered automatically
 * (and this file fails until the seeding below gives firm A and B a row in it).
 *
 * The whole canary runs for pooled firms (both in the shared database), bridge firms (each in
 * its own database on the shared server) and a silo firm beside a bridge firm. A dedicated
 * firm's rows are read where they live: its own database, and the shared one for the job
 * queue tables (the queue serves every placement from the shared database).
 */
const placementPairs: Array<[string, string]> = [
  ['starter', 'starter'],
  ['professional', 'professional'],
  ['enterprise', 'professional'],
];
const queueTables = new Set(['jobs', 'job_attempts', 'job_tenants']);
const createdTenants: string[] = [];
let stack: TestStack;

interface Firm {
  tenant: TestTenant;
  uuid: string;
  context: TenantContext;
  userId: string;
}

let firmA: Firm;
let firmB: Firm;
let tenantTables: string[];

const rlsViolation = { code: '42501', message: expect.stringMatching(/new row violates row-level security policy/) };
const permissionDenied = { code: '42501', message: expect.stringMatching(/permission denied/) };

class RollBack extends Error {}

function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

async function seedFirm(prefix: string, tier: string): Promise<Firm> {
  const tenant = await createTenant(stack.app, prefix, tier);
  createdTenants.push(tenant.id);
  const uuid = parseId('tenant', tenant.id);
  if (uuid === null) throw new Error(`not a tenant id: ${tenant.id}`);
  const record = await stack.platform.tenancy.getTenant(uuid);
  if (record === null) throw new Error(`tenant ${uuid} is not in the registry`);
  const context = tenantContextOf(record);

  // One plain entity and one created under an Idempotency-Key (so idempotency_keys gets a row).
  for (const headers of [{}, { 'idempotency-key': `canary-${newUuid()}` }]) {
    const created = await stack.app.inject({
      method: 'POST',
      url: '/v1/entities',
      headers: { ...tenant.auth, ...headers },
      payload: { name: uniqueName(`${prefix} Client`) },
    });
    if (created.statusCode !== 201) throw new Error(`entity creation failed: ${created.body}`);
    // An exchange rate of the entity (exchange_rates).
    const rates = await stack.app.inject({
      method: 'PUT',
      url: `/v1/entities/${created.json<{ id: string }>().id}/exchange-rates`,
      headers: tenant.auth,
      payload: { rates: [{ currency: 'EUR', date: '2026-03-01', rate: '1.1' }], source: 'import' },
    });
    if (rates.statusCode >= 300) throw new Error(`exchange rate failed: ${rates.body}`);
  }
  await seedLedgerCanary(stack, tenant);
  await seedIdentityCanary(stack, tenant);

  // An import job (jobs, job_tenants), and an attempt row as the dispatcher writes one (job_attempts).
  const imported = await stack.app.inject({
    method: 'POST',
    url: '/v1/entities/imports',
    headers: { ...tenant.auth, 'content-type': 'text/csv' },
    payload: `name\n${uniqueName(`${prefix} Imported`)}`,
  });
  if (imported.statusCode !== 202) throw new Error(`import failed: ${imported.body}`);
  const jobId = parseId('job', imported.json<{ jobId: string }>().jobId);
  await stack.platform.ownerPool.query(
    `insert into job_attempts (tenant_id, job_id, attempt, worker, started_at) values ($1, $2, 1, 'canary', now())`,
    [uuid, jobId],
  );

  const userId = await stack.platform.scopes.run(context, async (db) => {
    const { rows } = await db.query<{ id: string }>('select id from users where email = $1', [tenant.email]);
    return rows[0]?.id;
  });
  if (userId === undefined) throw new Error(`admin user of ${tenant.id} not found`);
  // A job checkpoint as a dedicated firm's import writes one (job_checkpoints), and a row report.
  await stack.platform.scopes.run(context, async (db) => {
    await db.query(`insert into job_checkpoints (tenant_id, job_id, attempt, checkpoint) values ($1, $2, 1, '{}')`, [
      uuid,
      jobId,
    ]);
    await db.query(`insert into job_row_reports (tenant_id, job_id, row_no, report) values ($1, $2, 1, '{}')`, [
      uuid,
      jobId,
    ]);
  });
  return { tenant, uuid, context, userId };
}

/** The scopes that reach a table's rows of this firm: the queue is in the shared database. */
function scopesFor(table: string) {
  return queueTables.has(table) ? stack.platform.queueScopes : stack.platform.scopes;
}

/** The runtime pool a firm's scopes use: the shared one, or its own database's. */
function poolOf(firm: Firm): pg.Pool {
  return stack.platform.placementPools.poolFor(firm.context.placement);
}

async function rowsInScope(firm: Firm, table: string): Promise<Array<{ tenant_id: string }>> {
  return await scopesFor(table).run(firm.context, async (db) => {
    const { rows } = await db.query<{ tenant_id: string }>(`select * from ${quoteIdentifier(table)}`);
    return rows;
  });
}

async function entityNames(firm: Firm): Promise<Map<string, string>> {
  return await stack.platform.scopes.run(firm.context, async (db) => {
    const { rows } = await db.query<{ id: string; name: string }>('select id, name from entities');
    return new Map(rows.map((row) => [row.id, row.name]));
  });
}

function userInsert(tenantId: string): [string, unknown[]] {
  return [
    'insert into users (tenant_id, id, email, password_hash, roles) values ($1, $2, $3, $4, $5)',
    [tenantId, newUuid(), `canary-${newUuid()}@example.test`, 'not-a-real-hash', ['owner']],
  ];
}

function entityInsert(tenantId: string, createdBy: string): [string, unknown[]] {
  return [
    `insert into entities (tenant_id, id, name, base_currency, fiscal_year_end, created_by)
     values ($1, $2, $3, 'USD', '12-31', $4)`,
    [tenantId, newUuid(), uniqueName('Canary Insert'), createdBy],
  ];
}

beforeAll(async () => {
  stack = await startTestStack();
  // Discovered with the owner role: information_schema only lists tables the reader can access.
  const { rows } = await stack.platform.ownerPool.query<{ table_name: string }>(
    `select c.table_name::text as table_name
       from information_schema.columns c
       join information_schema.tables t on t.table_schema = c.table_schema and t.table_name = c.table_name
      where c.table_schema = 'public' and c.column_name = 'tenant_id'
        and t.table_type in ('BASE TABLE', 'VIEW')
      order by 1`,
  );
  tenantTables = rows.map((row) => row.table_name);
});

afterAll(async () => {
  if (stack) await dropTenantDatabases(stack.platform, createdTenants);
  await stack?.close();
});

describe.each(placementPairs)('%s and %s firms', (tierA, tierB) => {
  beforeAll(async () => {
    firmA = await seedFirm('Canary A', tierA);
    firmB = await seedFirm('Canary B', tierB);
  });

  describe('reads inside a tenant scope', () => {
    it('finds the tenant tables in the catalog', () => {
      // Proves discovery works (so the per-table loops below are not empty) by naming the known tables.
      expect(tenantTables).toEqual(expect.arrayContaining(['entities', 'idempotency_keys', 'users']));
    });

    it("returns only the scoped firm's rows from a bare SELECT * on every tenant table", async () => {
      // Proves RLS filters reads: SELECT * without WHERE in each firm's scope yields ≥1 row, all of that firm.
      for (const firm of [firmA, firmB]) {
        for (const table of tenantTables) {
          const rows = await rowsInScope(firm, table);
          expect(rows.length, `${table} has no rows for ${firm.tenant.name}: seed it`).toBeGreaterThan(0);
          const foreign = rows.filter((row) => row.tenant_id !== firm.uuid);
          expect(foreign, `${table} leaks other tenants' rows into ${firm.tenant.name}'s scope`).toEqual([]);
        }
      }
    });

    it("shows only the scoped firm's row of the tenant registry", async () => {
      // Proves the registry policy: the owner sees A and B, the runtime role in A's scope sees only A, unscoped none.
      const { rows: registry } = await stack.platform.ownerPool.query<{ id: string }>(
        'select id from tenants where id = any($1::uuid[])',
        [[firmA.uuid, firmB.uuid]],
      );
      expect(registry.map((row) => row.id).sort()).toEqual([firmA.uuid, firmB.uuid].sort());

      // A dedicated database's copy of the registry table is empty: the registry is in the shared one.
      const scoped = await stack.platform.scopes.run(firmA.context, async (db) => {
        const { rows } = await db.query<{ id: string }>('select id from tenants');
        return rows.map((row) => row.id);
      });
      expect(scoped).toEqual(firmA.context.placement.model === 'pool' ? [firmA.uuid] : []);

      const { rows: unscoped } = await poolOf(firmA).query('select id from tenants');
      expect(unscoped).toEqual([]);
    });
  });

  describe('writes inside a tenant scope', () => {
    it("rejects inserting rows that carry another firm's tenant_id", async () => {
      // Proves WITH CHECK: from A's scope, users/entities rows for B fail with 42501, while the same rows for A succeed.
      const { scopes } = stack.platform;
      for (const [sql, params] of [userInsert(firmB.uuid), entityInsert(firmB.uuid, firmB.userId)]) {
        await expect(scopes.run(firmA.context, (db) => db.query(sql, params))).rejects.toMatchObject(rlsViolation);
      }
      // Control: identical rows for A are accepted (then rolled back), so only the tenant_id made the difference.
      for (const [sql, params] of [userInsert(firmA.uuid), entityInsert(firmA.uuid, firmA.userId)]) {
        const attempt = scopes.run(firmA.context, async (db) => {
          expect((await db.query(sql, params)).rowCount).toBe(1);
          throw new RollBack();
        });
        await expect(attempt).rejects.toBeInstanceOf(RollBack);
      }
    });

    it("rejects moving a firm's row to another firm by updating tenant_id", async () => {
      // Proves WITH CHECK on UPDATE: A's own entity and user are updatable, but setting tenant_id = B fails with 42501.
      const { scopes } = stack.platform;
      const entityId = [...(await entityNames(firmA)).keys()][0];
      expect(entityId).toBeDefined();
      const targets = [
        { table: 'entities', id: entityId },
        { table: 'users', id: firmA.userId },
      ];
      for (const { table, id } of targets) {
        const touched = await scopes.run(firmA.context, (db) =>
          db.query(`update ${table} set tenant_id = tenant_id where id = $1`, [id]),
        );
        expect(touched.rowCount, `${table} row of A is not visible to A`).toBe(1);
        await expect(
          scopes.run(firmA.context, (db) =>
            db.query(`update ${table} set tenant_id = $1 where id = $2`, [firmB.uuid, id]),
          ),
        ).rejects.toMatchObject(rlsViolation);
      }
      const stillA = await rowsInScope(firmA, 'entities');
      expect(stillA.map((row) => row.tenant_id)).toContain(firmA.uuid);
    });

    it("changes only the scoped firm's rows with an UPDATE that has no WHERE", async () => {
      // Proves RLS filters writes: a WHERE-less UPDATE in A's scope renames exactly A's entities; B's are untouched.
      const beforeA = await entityNames(firmA);
      const beforeB = await entityNames(firmB);
      expect(beforeA.size).toBeGreaterThan(0);
      expect(beforeB.size).toBeGreaterThan(0);

      const updated = await stack.platform.scopes.run(firmA.context, (db) =>
        db.query(`update entities set name = name || 'x'`),
      );
      expect(updated.rowCount).toBe(beforeA.size);

      expect(await entityNames(firmB)).toEqual(beforeB);
      const afterA = await entityNames(firmA);
      expect(afterA).toEqual(new Map([...beforeA].map(([id, name]) => [id, `${name}x`])));
    });
  });

  describe('no tenant set', () => {
    it('reads nothing from any tenant table on a plain pooled query', async () => {
      // Proves fail-closed reads: tables that hold A's rows return 0 rows to the runtime pool outside a scope.
      for (const table of tenantTables) {
        expect((await rowsInScope(firmA, table)).length).toBeGreaterThan(0);
        const pool = queueTables.has(table) ? stack.platform.runtimePool : poolOf(firmA);
        const { rows } = await pool.query(`select * from ${quoteIdentifier(table)}`);
        expect(rows, `${table} is readable without a tenant`).toEqual([]);
      }
    });

    it('rejects inserts on a plain pooled query', async () => {
      // Proves fail-closed writes: rows valid inside A's scope fail with 42501 when no tenant is set.
      const pool = poolOf(firmA);
      for (const [sql, params] of [userInsert(firmA.uuid), entityInsert(firmA.uuid, firmA.userId)]) {
        await expect(pool.query(sql, params)).rejects.toMatchObject(rlsViolation);
      }
    });
  });

  describe('the tenant setting is transaction-local', () => {
    it('leaves no app.tenant_id on pooled connections after scopes commit or roll back', async () => {
      // Proves no leak through the pool: every connection that ran a scope (commit and rollback) reads back '' or null.
      const { scopes } = stack.platform;
      const runtimePool = poolOf(firmA);
      const size =
        firmA.context.placement.model === 'pool' ? stack.config.runtimePoolMax : stack.config.dedicatedPoolMax;
      expect(size).toBeGreaterThan(1);
      // Firms in separate databases use separate pools: then every scope here is A's.
      const firmOf = (index: number) =>
        index % 2 === 0 || poolOf(firmB) !== runtimePool ? firmA.context : firmB.context;

      // Hold `size` scopes open at once so each one sets the tenant on its own connection.
      let arrived = 0;
      let openAll = () => {};
      const allOpen = new Promise<void>((resolve) => {
        openAll = resolve;
      });
      const seen: Array<{ pid: number; tenant: string; expected: string }> = [];
      const outcomes = await Promise.allSettled(
        Array.from({ length: size }, (_, index) =>
          scopes.run(firmOf(index), async (db) => {
            const { rows } = await db.query<{ pid: number; tenant: string }>(
              `select pg_backend_pid() as pid, current_setting('app.tenant_id') as tenant`,
            );
            const row = rows[0];
            if (row) seen.push({ ...row, expected: db.tenantId });
            arrived++;
            if (arrived === size) openAll();
            await allOpen;
            if (index % 2 === 1) throw new RollBack();
          }),
        ),
      );
      expect(outcomes.map((outcome) => outcome.status)).toEqual(
        Array.from({ length: size }, (_, index) => (index % 2 === 0 ? 'fulfilled' : 'rejected')),
      );
      expect(seen.map((row) => row.tenant)).toEqual(seen.map((row) => row.expected));
      const scopedPids = new Set(seen.map((row) => row.pid));
      expect(scopedPids.size).toBe(size);

      // Check out the whole pool at once: these are the very connections the scopes used.
      const clients: pg.PoolClient[] = [];
      try {
        for (let i = 0; i < size; i++) clients.push(await runtimePool.connect());
        const after = await Promise.all(
          clients.map(async (client) => {
            const { rows } = await client.query<{ pid: number; tenant: string | null }>(
              `select pg_backend_pid() as pid, current_setting('app.tenant_id', true) as tenant`,
            );
            return rows[0];
          }),
        );
        expect(new Set(after.map((row) => row?.pid))).toEqual(scopedPids);
        for (const row of after) expect(['', null]).toContain(row?.tenant);
      } finally {
        for (const client of clients) client.release();
      }

      // And plain pooled queries, more of them than connections, see no tenant either.
      const plain = await Promise.all(
        Array.from({ length: size * 2 }, () =>
          runtimePool.query<{ tenant: string | null }>(`select current_setting('app.tenant_id', true) as tenant`),
        ),
      );
      for (const result of plain) expect(['', null]).toContain(result.rows[0]?.tenant);
    });
  });

  describe('runtime role privileges', () => {
    it('cannot read platform secrets or signing keys at all', async () => {
      // Proves the grants: SELECT on the control-plane secret tables fails with permission denied (42501).
      for (const table of ['platform_secrets', 'signing_keys']) {
        await expect(poolOf(firmA).query(`select * from ${table}`)).rejects.toMatchObject(permissionDenied);
        await expect(
          stack.platform.scopes.run(firmA.context, (db) => db.query(`select * from ${table}`)),
        ).rejects.toMatchObject(permissionDenied);
      }
    });

    it("cannot read or change issued invoices or their pending audit events, any firm's", async () => {
      // Proves the grants: the invoice tables are the operator's (owner role only); from A's scope
      // every statement on them fails with permission denied, so a firm can neither see another
      // firm's invoices nor drop or forge an event waiting for its log.
      for (const table of ['issued_invoices', 'issued_invoice_audits_pending']) {
        for (const sql of [
          `select * from ${table}`,
          `delete from ${table}`,
          `update ${table} set tenant = '${firmB.context.tenantId}'`,
        ]) {
          await expect(stack.platform.scopes.run(firmA.context, (db) => db.query(sql))).rejects.toMatchObject(
            permissionDenied,
          );
        }
      }
      await expect(
        stack.platform.scopes.run(firmA.context, (db) =>
          db.query(
            `insert into issued_invoice_audits_pending (invoice_id, tenant, month) values ('inv_forged', $1, '2020-01-01')`,
            [firmA.context.tenantId],
          ),
        ),
      ).rejects.toMatchObject(permissionDenied);
    });

    it("cannot DELETE entities, even its own firm's", async () => {
      // Proves the grants: DELETE in A's scope, where RLS would allow A's rows, fails with permission denied and removes nothing.
      const before = await entityNames(firmA);
      expect(before.size).toBeGreaterThan(0);
      await expect(
        stack.platform.scopes.run(firmA.context, (db) => db.query('delete from entities')),
      ).rejects.toMatchObject(permissionDenied);
      expect(await entityNames(firmA)).toEqual(before);
    });
  });
});
