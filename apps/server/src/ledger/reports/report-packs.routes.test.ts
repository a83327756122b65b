import { createHash, randomUUID } from 'node:crypto';
import { strFromU8, unzipSync } from 'fflate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenant, problemOf, startTestStack, type TestStack, type TestTenant } from '../../../test/harness.ts';
import { testLog, waitForJob } from '../../jobs/jobs.test-support.ts';
import { createJobWorker, type JobWorker } from '../../jobs/jobs.worker.ts';
import { addUser, createBooks, post, type TestBooks, twoLine } from '../ledger.test-support.ts';
import { reportPackKind } from './report-packs.ts';

/**
 * Report packs end to end: queued as a job, rendered in the job's tenant scope, downloaded as
 * a ZIP whose manifest lists every file with its digest and the statements' checks; refused
 * for another firm's entity or pack, and for an entity the caller may not see.
 */
let stack: TestStack;
let firm: TestTenant;
let books: TestBooks;
let worker: JobWorker;

beforeAll(async () => {
  stack = await startTestStack();
  worker = createJobWorker(stack.platform, testLog, { slots: 2, pollMs: 50, kinds: [reportPackKind] });
  stack.platform.jobs.onSubmitted(() => worker.wake());
  worker.start();
  firm = await createTenant(stack.app, 'Pack firm');
  books = await createBooks(stack, firm);
  for (const entry of [
    twoLine(books, '2026-01-10', '1010', '3000', 500_000),
    twoLine(books, '2026-02-14', '1010', '4000', 123_456),
    twoLine(books, '2026-03-03', '6000', '1010', 20_001),
  ]) {
    expect((await post(stack, books, entry)).statusCode).toBe(201);
  }
});

afterAll(async () => {
  await worker?.stop();
  await stack?.close();
});

async function queuePack(auth: object, entityId: string, body: object, key = randomUUID()) {
  return await stack.app.inject({
    method: 'POST',
    url: `/v1/entities/${entityId}/report-packs`,
    headers: { ...auth, 'idempotency-key': key },
    payload: body,
  });
}

/** How many pack jobs the firm has queued so far. */
async function packJobs(): Promise<number> {
  const jobs = await stack.app.inject({ method: 'GET', url: '/v1/jobs?limit=200', headers: firm.auth });
  return jobs.json<{ items: Array<{ kind: string }> }>().items.filter((job) => job.kind === 'reports.pack').length;
}

interface PackResult {
  packId: string;
  from: string;
  to: string;
  files: Array<{ name: string; bytes: number; sha256: string }>;
  sizeBytes: number;
  sha256: string;
  checks: Record<string, { balanced: boolean; tiesToJournal: boolean | null }>;
  links: { archive: string };
}

async function madePack(auth: object, body: object): Promise<PackResult> {
  const accepted = await queuePack(auth, books.entityId, body);
  expect(accepted.statusCode).toBe(202);
  const job = await waitForJob<{ status: string; result: PackResult }>(
    stack,
    firm,
    accepted.json<{ jobId: string }>().jobId,
  );
  expect(job.status).toBe('succeeded');
  return job.result;
}

describe('report packs', () => {
  it('renders every statement in every format, with a manifest that ties each file and check', async () => {
    const pack = await madePack(firm.auth, { from: '2026-01-01', to: '2026-03-31' });
    const download = await stack.app.inject({ method: 'GET', url: pack.links.archive, headers: firm.auth });
    expect(download.statusCode).toBe(200);
    expect(download.headers['content-type']).toBe('application/zip');
    expect(download.headers['content-disposition']).toContain('report-pack-2026-03-31.zip');
    const archive = download.rawPayload;
    expect(createHash('sha256').update(archive).digest('hex')).toBe(pack.sha256);
    expect(archive.length).toBe(pack.sizeBytes);

    const files = unzipSync(new Uint8Array(archive));
    const statements = ['trial-balance', 'income-statement', 'balance-sheet'];
    const expected = statements.flatMap((name) => ['pdf', 'xlsx', 'csv'].map((format) => `${name}.${format}`));
    expect(Object.keys(files).sort()).toEqual([...expected, 'manifest.json'].sort());
    const manifest = JSON.parse(strFromU8(files['manifest.json'] as Uint8Array));
    expect(manifest).toMatchObject({ entityId: books.entityId, from: '2026-01-01', to: '2026-03-31' });
    expect(manifest.files).toEqual(pack.files);
    for (const file of manifest.files as PackResult['files']) {
      const bytes = files[file.name] as Uint8Array;
      expect(bytes.length).toBe(file.bytes);
      expect(createHash('sha256').update(bytes).digest('hex')).toBe(file.sha256);
    }
    for (const check of Object.values(manifest.checks as PackResult['checks'])) {
      expect(check.balanced).toBe(true);
      expect(check.tiesToJournal).not.toBe(false);
    }
    expect(strFromU8((files['trial-balance.pdf'] as Uint8Array).subarray(0, 5))).toBe('%PDF-');
    expect(strFromU8((files['balance-sheet.xlsx'] as Uint8Array).subarray(0, 2))).toBe('PK');
    // The figures are the books': revenue of 1,234.56 and cash of 6,034.55 (5,000 + 1,234.56 − 200.01).
    const income = strFromU8(files['income-statement.csv'] as Uint8Array);
    expect(income).toMatch(/USD,revenue,4000,[^,]*,1234\.56,/);
    const balance = strFromU8(files['balance-sheet.csv'] as Uint8Array);
    expect(balance).toMatch(/USD,assets,1010,[^,]*,6034\.55,/);
  });

  it('holds only the formats asked for', async () => {
    const pack = await madePack(firm.auth, { to: '2026-02-28', formats: ['csv'] });
    expect(pack.files.map((file) => file.name).sort()).toEqual([
      'balance-sheet.csv',
      'income-statement.csv',
      'trial-balance.csv',
    ]);
  });

  it('refuses a range that ends before it starts and an unknown format, queueing nothing', async () => {
    const before = await packJobs();
    const backwards = await queuePack(firm.auth, books.entityId, { from: '2026-04-01', to: '2026-03-31' });
    expect(problemOf(backwards)).toMatchObject({ status: 400, body: { code: 'REPORT_RANGE_INVALID' } });
    const unknown = await queuePack(firm.auth, books.entityId, { to: '2026-03-31', formats: ['docx'] });
    expect(problemOf(unknown)).toMatchObject({ status: 400, body: { code: 'REQUEST_VALIDATION_FAILED' } });
    const badDate = await queuePack(firm.auth, books.entityId, { to: '2026-02-30' });
    expect(problemOf(badDate)).toMatchObject({ status: 422, body: { code: 'LEDGER_DATE_INVALID' } });
    expect(await packJobs()).toBe(before);
  });

  it('answers a retried request with the same job', async () => {
    const key = randomUUID();
    const first = await queuePack(firm.auth, books.entityId, { to: '2026-03-31', formats: ['csv'] }, key);
    const again = await queuePack(firm.auth, books.entityId, { to: '2026-03-31', formats: ['csv'] }, key);
    expect(again.statusCode).toBe(202);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.json<{ jobId: string }>().jobId).toBe(first.json<{ jobId: string }>().jobId);
    await waitForJob(stack, firm, first.json<{ jobId: string }>().jobId);
  });

  it('is not there for another firm, nor for a user of the firm who may not see the entity', async () => {
    const pack = await madePack(firm.auth, { to: '2026-01-31', formats: ['csv'] });
    const other = await createTenant(stack.app, 'Other pack firm');
    const theirs = await stack.app.inject({ method: 'GET', url: pack.links.archive, headers: other.auth });
    expect(problemOf(theirs)).toMatchObject({ status: 404, body: { code: 'REPORT_PACK_NOT_FOUND' } });
    const queued = await queuePack(other.auth, books.entityId, { to: '2026-01-31' });
    expect(problemOf(queued)).toMatchObject({ status: 404, body: { code: 'ENTITY_NOT_FOUND' } });

    const elsewhere = await createBooks(stack, firm);
    const staff = await addUser(stack, firm, ['staff'], [elsewhere.entityId]);
    const hidden = await stack.app.inject({ method: 'GET', url: pack.links.archive, headers: staff.auth });
    expect(problemOf(hidden)).toMatchObject({ status: 404, body: { code: 'REPORT_PACK_NOT_FOUND' } });
    const refused = await queuePack(staff.auth, books.entityId, { to: '2026-01-31' });
    expect(problemOf(refused)).toMatchObject({ status: 404, body: { code: 'ENTITY_NOT_FOUND' } });
    // The same pack id under another entity of the firm is not found either.
    const misplaced = await stack.app.inject({
      method: 'GET',
      url: pack.links.archive.replace(books.entityId, elsewhere.entityId),
      headers: firm.auth,
    });
    expect(problemOf(misplaced)).toMatchObject({ status: 404, body: { code: 'REPORT_PACK_NOT_FOUND' } });
  });

  it('lists the entity’s packs newest first, a page at a time, and only the firm’s own', async () => {
    const list = (query: string, auth: Record<string, string> = firm.auth) =>
      stack.app.inject({ method: 'GET', url: `/v1/entities/${books.entityId}/report-packs?${query}`, headers: auth });
    const all = (await list('limit=100')).json<{ items: Array<PackResult & { id: string; createdAt: string }> }>();
    // The packs the tests above made, the latest (to 2026-01-31, csv) first.
    expect(all.items.length).toBeGreaterThanOrEqual(4);
    expect(all.items[0]).toMatchObject({ to: '2026-01-31', files: [{ name: 'trial-balance.csv' }, {}, {}] });
    const times = all.items.map((item) => Date.parse(item.createdAt));
    expect(times).toEqual([...times].sort((left, right) => right - left));
    const paged: string[] = [];
    let cursor: string | null = null;
    do {
      const response = await list(`limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      const page: { items: Array<{ id: string }>; nextCursor: string | null } = response.json();
      paged.push(...page.items.map((item) => item.id));
      cursor = page.nextCursor;
    } while (cursor);
    expect(paged).toEqual(all.items.map((item) => item.id));
    // Each listed archive is the one downloaded.
    const [latest] = all.items;
    const download = await stack.app.inject({ method: 'GET', url: latest?.links.archive ?? '', headers: firm.auth });
    expect(createHash('sha256').update(download.rawPayload).digest('hex')).toBe(latest?.sha256);

    expect(problemOf(await list('cursor=bm90LWpzb24'))).toMatchObject({
      status: 400,
      body: { code: 'PAGINATION_CURSOR_INVALID' },
    });
    const other = await createTenant(stack.app, 'Lister firm');
    expect(problemOf(await list('limit=10', other.auth))).toMatchObject({
      status: 404,
      body: { code: 'ENTITY_NOT_FOUND' },
    });
  });
});
