import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenant, dropTenantDatabases, startTestStack, type TestStack } from '../../../test/harness.ts';
import type { TenantContext } from '../../platform/database/tenant-scope.ts';
import { newUuid } from '../../platform/ids.ts';
import { contextOf } from '../jobs.test-support.ts';
import type { ClaimedJob, JsonValue } from '../jobs.types.ts';
import { entityImportJob, entityImportLimits, type ImportReport, type ImportRow } from './entity-import.ts';

/**
 * The import handler on its own, as a worker runs it: each batch commits its entities, its
 * rows' reports and a checkpoint of a few bytes together; an attempt that stops after a batch
 * is resumed from the checkpoint and reports every row exactly once; a checkpoint written
 * before the row reports had their own table still counts the rows it carried.
 */
let stack: TestStack;
/** Firms with a database of their own, dropped at the end. */
const dedicated: string[] = [];

beforeAll(async () => {
  stack = await startTestStack();
});

afterAll(async () => {
  if (stack) await dropTenantDatabases(stack.platform, dedicated);
  await stack?.close();
});

const rowCount = 2 * entityImportLimits.batchRows + 50;

function rows(prefix: string): ImportRow[] {
  // Every tenth row is invalid, so the report holds more than one status.
  return Array.from(
    { length: rowCount },
    (_, index): ImportRow =>
      index % 10 === 9 ? { name: `${prefix} ${index}`, entityType: 'llp' } : { name: `${prefix} ${index}` },
  );
}

async function ownerId(tenant: TenantContext): Promise<string> {
  const { rows: users } = await stack.platform.scopes.run(tenant, (db) =>
    db.query<{ id: string }>('select id from users limit 1'),
  );
  const id = users[0]?.id;
  if (id === undefined) throw new Error('no user');
  return id;
}

/** Runs one attempt; `stopAfterRows` aborts it once that many rows have committed. */
async function attempt(
  tenant: TenantContext,
  jobId: string,
  payload: { createdBy: string; source: 'json'; rows: ImportRow[] },
  checkpoint: JsonValue | null,
  saved: JsonValue[],
  stopAfterRows?: number,
): Promise<ImportReport> {
  const controller = new AbortController();
  const result = await entityImportJob.run({
    job: { id: jobId, checkpoint } as unknown as ClaimedJob,
    payload,
    tenant,
    scopes: stack.platform.scopes,
    signal: controller.signal,
    progress: (_percent, message) => {
      if (stopAfterRows !== undefined && message?.startsWith(`${stopAfterRows} of`)) controller.abort();
    },
    saveCheckpoint: async (_db, value) => {
      saved.push(value);
    },
    log: pino({ level: 'silent' }),
  });
  return result as unknown as ImportReport;
}

async function entityCount(tenant: TenantContext, prefix: string): Promise<number> {
  const { rows: counted } = await stack.platform.scopes.run(tenant, (db) =>
    db.query<{ count: string }>('select count(*) from entities where starts_with(name, $1)', [prefix]),
  );
  return Number(counted[0]?.count);
}

describe('entity import handler', () => {
  it('resumes after the last committed batch and reports every row once, with checkpoints of a few bytes', async () => {
    const tenant = await contextOf(stack, await createTenant(stack.app, 'Import resume'));
    const payload = { createdBy: await ownerId(tenant), source: 'json' as const, rows: rows('Resumed') };
    const jobId = newUuid();
    const saved: JsonValue[] = [];
    await expect(attempt(tenant, jobId, payload, null, saved, entityImportLimits.batchRows)).rejects.toMatchObject({
      name: 'AbortError',
    });
    expect(saved).toEqual([{ nextRow: entityImportLimits.batchRows }]);
    expect(await entityCount(tenant, 'Resumed')).toBe(entityImportLimits.batchRows * 0.9);

    const result = await attempt(tenant, jobId, payload, saved.at(-1) ?? null, saved);
    expect(saved.map((value) => JSON.stringify(value).length).every((length) => length < 40)).toBe(true);
    expect(result).toMatchObject({ rows: rowCount, created: rowCount * 0.9, duplicates: 0, invalid: rowCount * 0.1 });
    expect(result.report.map((entry) => entry.row)).toEqual(Array.from({ length: rowCount }, (_, index) => index + 1));
    expect(result.report[9]).toMatchObject({ row: 10, status: 'invalid' });
    expect(await entityCount(tenant, 'Resumed')).toBe(rowCount * 0.9);
  });

  it('creates a batch with one statement, in row order: a name taken before or earlier in the batch, in any case, is a duplicate', async () => {
    const tenant = await contextOf(stack, await createTenant(stack.app, 'Import duplicates'));
    const other = await contextOf(stack, await createTenant(stack.app, 'Import duplicates elsewhere'));
    const createdBy = await ownerId(tenant);
    // Another firm's entity of the same name is no duplicate: names are unique per firm.
    await attempt(
      other,
      newUuid(),
      { createdBy: await ownerId(other), source: 'json', rows: [{ name: 'Fir LLC' }] },
      null,
      [],
    );
    await attempt(tenant, newUuid(), { createdBy, source: 'json', rows: [{ name: 'Elm LLC' }] }, null, []);
    const result = await attempt(
      tenant,
      newUuid(),
      {
        createdBy,
        source: 'json',
        rows: [
          { name: 'ELM llc' },
          { name: 'Fir LLC' },
          { name: 'Gum', entityType: 'llp' },
          { name: 'fir llc' },
          { name: 'Gum' },
        ],
      },
      null,
      [],
    );
    expect(result.report.map((entry) => [entry.row, entry.status, entry.name])).toEqual([
      [1, 'duplicate', 'ELM llc'],
      [2, 'created', 'Fir LLC'],
      [3, 'invalid', undefined],
      [4, 'duplicate', 'fir llc'],
      [5, 'created', 'Gum'],
    ]);
    const { rows: names } = await stack.platform.scopes.run(tenant, (db) =>
      db.query<{ name: string; id: string }>('select name, id from entities order by name'),
    );
    expect(names.map((row) => row.name)).toEqual(['Elm LLC', 'Fir LLC', 'Gum']);
    expect(result.report[1]?.entityId).toBe(`ent_${names[1]?.id.replaceAll('-', '')}`);
  });

  it("keeps a firm's row reports from another firm: not readable, not writable under its id, not changeable", async () => {
    const owner = await contextOf(stack, await createTenant(stack.app, 'Import reports A'));
    const other = await contextOf(stack, await createTenant(stack.app, 'Import reports B'));
    const jobId = newUuid();
    await attempt(owner, jobId, { createdBy: await ownerId(owner), source: 'json', rows: rows('Private') }, null, []);
    const count = (tenant: TenantContext) =>
      stack.platform.scopes.run(tenant, async (db) => {
        const { rows: counted } = await db.query<{ count: string }>(
          'select count(*) from job_row_reports where job_id = $1',
          [jobId],
        );
        return Number(counted[0]?.count);
      });
    expect(await count(owner)).toBe(rowCount);
    expect(await count(other)).toBe(0);
    await expect(
      stack.platform.scopes.run(other, (db) =>
        db.query(`insert into job_row_reports (tenant_id, job_id, row_no, report) values ($1, $2, 999, '{}')`, [
          owner.tenantId,
          jobId,
        ]),
      ),
    ).rejects.toMatchObject({ code: '42501' });
    for (const sql of [`update job_row_reports set report = '{}'`, 'delete from job_row_reports']) {
      await expect(stack.platform.scopes.run(other, (db) => db.query(sql))).rejects.toMatchObject({ code: '42501' });
    }
    expect(await count(owner)).toBe(rowCount);
  });

  it("counts the rows a checkpoint from before the row-report table carried, and only this job's rows", async () => {
    const tenant = await contextOf(stack, await createTenant(stack.app, 'Import legacy'));
    const createdBy = await ownerId(tenant);
    // Another job of the same firm, finished, whose rows must not leak into this one's report.
    await attempt(tenant, newUuid(), { createdBy, source: 'json', rows: rows('Other') }, null, []);
    const carried = Array.from({ length: entityImportLimits.batchRows }, (_, index) => ({
      row: index + 1,
      status: 'created',
      name: `Legacy ${index}`,
    }));
    const result = await attempt(
      tenant,
      newUuid(),
      { createdBy, source: 'json', rows: rows('Legacy') },
      { nextRow: entityImportLimits.batchRows, report: carried },
      [],
    );
    expect(result.rows).toBe(rowCount);
    expect(result.report.map((entry) => entry.row)).toEqual(Array.from({ length: rowCount }, (_, index) => index + 1));
    expect(result.report[0]).toEqual(carried[0]);
  });

  it("refreshes the planner's statistics of the firm's entities as the import grows them, by autovacuum's rule", async () => {
    // A firm with a database of its own, so the entities table holds this firm's rows only.
    const firm = await createTenant(stack.app, 'Import statistics', 'enterprise');
    dedicated.push(firm.id);
    const tenant = await contextOf(stack, firm);
    expect(tenant.placement.model).toBe('silo');
    const statistics = () =>
      stack.platform.scopes.run(tenant, async (db) => {
        const { rows: found } = await db.query<{ analyzed: string; known: number; actual: string }>(
          `select pg_stat_get_analyze_count('entities'::regclass) as analyzed,
                  (select reltuples from pg_class where oid = 'entities'::regclass) as known,
                  (select count(*) from entities) as actual`,
        );
        const [row] = found;
        if (!row) throw new Error('no statistics row');
        return { analyzed: Number(row.analyzed), known: Number(row.known), actual: Number(row.actual) };
      });
    const before = await statistics();
    expect(before.known).toBeLessThan(50);

    const result = await attempt(
      tenant,
      newUuid(),
      { createdBy: await ownerId(tenant), source: 'json', rows: rows('Analyzed') },
      null,
      [],
    );
    expect(result.created).toBe(rowCount * 0.9);
    const after = await statistics();
    expect(after.actual).toBe(before.actual + rowCount * 0.9);
    // 90 rows per batch on an (almost) empty table: past the threshold of 50 + 10 % at the
    // second batch's start (90 known) and again at the third's (180), not at the end (45 more).
    expect(after.analyzed).toBe(before.analyzed + 2);
    // What the second of them counted (autovacuum, where it runs, may since have counted all).
    expect(after.known).toBeGreaterThanOrEqual(before.actual + 2 * entityImportLimits.batchRows * 0.9);
    expect(after.known).toBeLessThanOrEqual(after.actual);

    // Below the threshold nothing runs; the runtime role reaches only the tables named, and on
    // its own may not analyze (PostgreSQL skips the table with a warning).
    await stack.platform.scopes.run(tenant, async (db) => {
      const { rows: refreshed } = await db.query<{ analyzed: boolean }>(
        `select refresh_table_statistics('entities', 10) as analyzed`,
      );
      expect(refreshed[0]?.analyzed).toBe(false);
      await db.query('analyze entities');
    });
    expect((await statistics()).analyzed).toBe(after.analyzed);
    await expect(
      stack.platform.scopes.run(tenant, (db) => db.query(`select refresh_table_statistics('users', 1000000)`)),
    ).rejects.toMatchObject({ code: '22023' });
  });
});
