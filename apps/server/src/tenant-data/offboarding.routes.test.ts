import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTenant,
  createUnthrottledTenant,
  operatorKey,
  problemOf,
  startTestStack,
  type TestStack,
  type TestTenant,
} from '../../test/harness.ts';
import { eventually } from '../jobs/jobs.test-support.ts';
import { createJobWorker, type JobWorker } from '../jobs/jobs.worker.ts';
import { createBooks, post, twoLine } from '../ledger/ledger.test-support.ts';
import { parseId } from '../platform/ids.ts';
import { createLogger } from '../platform/logger.ts';
import type { ExportManifest } from './export-archive.ts';
import { countTenantRows } from './purge.ts';
import { tenantExportKind } from './tenant-data.service.ts';
import { discoverTenantTables } from './tenant-tables.ts';

/**
 * Offboarding through the operator API: an export holds every tenant table as JSON Lines with a
 * manifest whose counts and SHA-256 match the files; a legal hold blocks offboarding and purge;
 * offboarding needs an export unless forced and schedules the purge after the tier's retention;
 * the purge removes the tenant's rows from every table (journal included) and nobody else's.
 */
let stack: TestStack;
let worker: JobWorker;
const operator = { authorization: `Bearer ${operatorKey}` };

beforeAll(async () => {
  stack = await startTestStack();
  worker = createJobWorker(stack.platform, createLogger('silent'), { kinds: [tenantExportKind], pollMs: 50 });
  worker.start();
});

afterAll(async () => {
  await worker.stop();
  await stack.close();
});

function uuidOf(tenant: TestTenant): string {
  const id = parseId('tenant', tenant.id);
  if (!id) throw new Error('bad tenant id');
  return id;
}

/** A firm with users, an entity, a chart and posted journal entries (append-only rows). */
async function firmWithBooks(prefix: string): Promise<TestTenant> {
  const tenant = await createUnthrottledTenant(stack.app, prefix);
  const books = await createBooks(stack, tenant);
  for (let index = 0; index < 3; index += 1) {
    const posted = await post(stack, books, twoLine(books, '2026-03-15', '1000', '4000', 1_000 + index));
    expect(posted.statusCode, posted.body).toBe(201);
  }
  return tenant;
}

async function finishedExport(tenant: TestTenant): Promise<{ id: string; downloadUrl: string; sha256: string }> {
  const created = await stack.app.inject({
    method: 'POST',
    url: `/v1/tenants/${tenant.id}/exports`,
    headers: operator,
  });
  expect(created.statusCode, created.body).toBe(202);
  const { id } = created.json<{ id: string }>();
  return await eventually(async () => {
    const read = await stack.app.inject({
      method: 'GET',
      url: `/v1/tenants/${tenant.id}/exports/${id}`,
      headers: operator,
    });
    const body = read.json<{ status: string; downloadUrl: string; sha256: string; error: string | null }>();
    if (body.status === 'failed') throw new Error(`export failed: ${body.error}`);
    return body.status === 'succeeded' ? { id, downloadUrl: body.downloadUrl, sha256: body.sha256 } : undefined;
  });
}

async function readArchive(buffer: Buffer): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  const extract = tar.extract();
  const done = new Promise<void>((resolve, reject) => {
    extract.on('entry', (header, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: unknown) => chunks.push(chunk as Buffer));
      stream.on('end', () => {
        files.set(header.name, Buffer.concat(chunks));
        next();
      });
      stream.resume();
    });
    extract.on('finish', resolve);
    extract.on('error', reject);
  });
  extract.end(gunzipSync(buffer));
  await done;
  return files;
}

describe('tenant export', () => {
  it('holds every tenant table as JSON Lines, with a manifest whose counts and hashes match, and only this tenant', async () => {
    const firm = await firmWithBooks('Export');
    const other = await firmWithBooks('Neighbour');
    await stack.platform.metering.recorder.flush();
    const exported = await finishedExport(firm);
    const download = await stack.app.inject({ method: 'GET', url: exported.downloadUrl, headers: operator });
    expect(download.statusCode).toBe(200);
    expect(download.headers['content-type']).toBe('application/gzip');
    expect(createHash('sha256').update(download.rawPayload).digest('hex')).toBe(exported.sha256);

    const files = await readArchive(download.rawPayload);
    const manifest = JSON.parse(String(files.get('manifest.json'))) as ExportManifest;
    expect(manifest.tenantId).toBe(uuidOf(firm));
    // Every table the catalog names (tenant_id or metering's tenant column) is in the archive.
    const catalog = await discoverTenantTables(stack.platform.ownerPool);
    expect(manifest.tables.map((table) => table.table).sort()).toEqual(catalog.map((table) => table.name).sort());
    const expectedCounts = await countTenantRows(stack.platform.ownerPool, uuidOf(firm), catalog);
    for (const table of manifest.tables) {
      const content = files.get(table.file);
      expect(content, table.file).toBeDefined();
      if (!content) continue;
      expect(createHash('sha256').update(content).digest('hex'), table.file).toBe(table.sha256);
      const lines = content.length === 0 ? [] : String(content).trimEnd().split('\n');
      expect(lines.length, table.table).toBe(table.rows);
      // Usage events keep arriving in the background (metering), so counts are compared on tenant tables.
      if (catalog.find((entry) => entry.name === table.table)?.tenantColumn === 'tenant_id') {
        expect(table.rows, table.table).toBe(expectedCounts[table.table]);
      }
      for (const text of lines) {
        const row = JSON.parse(text) as Record<string, unknown>;
        expect(row.tenant_id ?? row.tenant, table.table).toBe(uuidOf(firm));
      }
    }
    const rowsOf = (name: string) => manifest.tables.find((table) => table.table === name)?.rows ?? 0;
    expect(rowsOf('journal_entries')).toBe(3);
    expect(rowsOf('journal_lines')).toBe(6);
    expect(rowsOf('users')).toBe(1);
    expect(rowsOf('accounts')).toBeGreaterThan(10);
    // The neighbour's export is its own.
    expect(other.id).not.toBe(firm.id);
  });

  it('answers 404 for an unknown export or tenant, and 409 for a download before the archive exists', async () => {
    const firm = await createTenant(stack.app, 'NoExport');
    const unknown = await stack.app.inject({
      method: 'GET',
      url: `/v1/tenants/${firm.id}/exports/exp_${'0'.repeat(32)}`,
      headers: operator,
    });
    expect(problemOf(unknown).body.code).toBe('TENANT_EXPORT_NOT_FOUND');
    const ghost = await stack.app.inject({
      method: 'POST',
      url: `/v1/tenants/ten_${'0'.repeat(32)}/exports`,
      headers: operator,
    });
    expect(problemOf(ghost).body.code).toBe('TENANT_NOT_FOUND');
    const anonymous = await stack.app.inject({ method: 'POST', url: `/v1/tenants/${firm.id}/exports` });
    expect(anonymous.statusCode).toBe(401);
    const asTenant = await stack.app.inject({
      method: 'POST',
      url: `/v1/tenants/${firm.id}/exports`,
      headers: firm.auth,
    });
    expect(asTenant.statusCode).toBe(401);
  });

  it("will not serve one tenant's export under another tenant's id", async () => {
    const firm = await createTenant(stack.app, 'Owner');
    const stranger = await createTenant(stack.app, 'Stranger');
    const exported = await finishedExport(firm);
    const crossed = await stack.app.inject({
      method: 'GET',
      url: `/v1/tenants/${stranger.id}/exports/${exported.id}/download`,
      headers: operator,
    });
    expect(problemOf(crossed).body.code).toBe('TENANT_EXPORT_NOT_FOUND');
  });
});

describe('offboarding', () => {
  it('is refused without an export unless forced, and under legal hold even when forced', async () => {
    const firm = await createTenant(stack.app, 'Leaving');
    const refused = await stack.app.inject({ method: 'DELETE', url: `/v1/tenants/${firm.id}`, headers: operator });
    expect(problemOf(refused).body.code).toBe('TENANT_EXPORT_REQUIRED');

    const hold = await stack.app.inject({
      method: 'PUT',
      url: `/v1/tenants/${firm.id}/legal-hold`,
      headers: operator,
      payload: { reason: 'litigation 2026-17' },
    });
    expect(hold.statusCode, hold.body).toBe(200);
    expect(hold.json<{ legalHold: { reason: string } }>().legalHold.reason).toBe('litigation 2026-17');
    const held = await stack.app.inject({
      method: 'DELETE',
      url: `/v1/tenants/${firm.id}?force=true`,
      headers: operator,
    });
    expect(problemOf(held).body.code).toBe('TENANT_LEGAL_HOLD');

    const cleared = await stack.app.inject({
      method: 'DELETE',
      url: `/v1/tenants/${firm.id}/legal-hold`,
      headers: operator,
    });
    expect(cleared.json<{ legalHold: unknown }>().legalHold).toBeNull();
    const forced = await stack.app.inject({
      method: 'DELETE',
      url: `/v1/tenants/${firm.id}?force=true`,
      headers: operator,
    });
    expect(forced.statusCode, forced.body).toBe(200);
    expect(forced.json<{ status: string; exportId: string | null }>()).toMatchObject({
      status: 'offboarded',
      exportId: null,
    });
    // The offboarded firm's staff are refused from now on.
    const signedOut = await stack.app.inject({ method: 'GET', url: '/v1/entities', headers: firm.auth });
    expect(problemOf(signedOut).body.code).toBe('TENANT_NOT_ACTIVE');
    const again = await stack.app.inject({ method: 'DELETE', url: `/v1/tenants/${firm.id}`, headers: operator });
    expect(problemOf(again).body.code).toBe('TENANT_ALREADY_OFFBOARDED');
  });

  it('schedules the purge for the tier retention after the export, and the purge removes every row of the tenant only', async () => {
    const firm = await firmWithBooks('Purged');
    const neighbour = await firmWithBooks('Stays');
    const exported = await finishedExport(firm);
    const exportRecord = await stack.platform.tenantData.getExport(
      uuidOf(firm),
      parseId('tenantExport', exported.id) ?? '',
    );
    const offboarded = await stack.app.inject({ method: 'DELETE', url: `/v1/tenants/${firm.id}`, headers: operator });
    expect(offboarded.statusCode, offboarded.body).toBe(200);
    const body = offboarded.json<{ purgeAfter: string; exportId: string }>();
    expect(body.exportId).toBe(exported.id);
    const retentionDays = stack.platform.tiers.find('starter')?.dataRetentionDays ?? 0;
    expect(new Date(body.purgeAfter).getTime()).toBe(
      (exportRecord.finishedAt?.getTime() ?? 0) + retentionDays * 86_400_000,
    );

    // Nothing is due yet; a legal hold set now keeps the data past its date.
    const catalog = await discoverTenantTables(stack.platform.ownerPool);
    const total = (counts: Record<string, number>) => Object.values(counts).reduce((sum, count) => sum + count, 0);
    expect(await stack.platform.tenantData.purgeDue(new Date())).not.toContain(uuidOf(firm));
    await stack.app.inject({
      method: 'PUT',
      url: `/v1/tenants/${firm.id}/legal-hold`,
      headers: operator,
      payload: { reason: 'regulator request' },
    });
    const afterRetention = new Date(new Date(body.purgeAfter).getTime() + 1_000);
    expect(await stack.platform.tenantData.purgeDue(afterRetention)).not.toContain(uuidOf(firm));
    const heldPurge = await stack.app.inject({
      method: 'POST',
      url: `/v1/tenants/${firm.id}/purge`,
      headers: operator,
    });
    expect(problemOf(heldPurge).body.code).toBe('TENANT_LEGAL_HOLD');
    expect(total(await countTenantRows(stack.platform.ownerPool, uuidOf(firm), catalog))).toBeGreaterThan(20);

    await stack.app.inject({ method: 'DELETE', url: `/v1/tenants/${firm.id}/legal-hold`, headers: operator });
    // Usage events of earlier requests are flushed in the background, so the neighbour is compared on its tenant tables.
    const tenantTables = catalog.filter((table) => table.tenantColumn === 'tenant_id');
    const neighbourBefore = await countTenantRows(stack.platform.ownerPool, uuidOf(neighbour), tenantTables);
    // Usage of the firm's earlier requests is written before the purge, as it is in service long before a purge is due.
    await stack.platform.metering.recorder.flush();
    expect(await stack.platform.tenantData.purgeDue(afterRetention, 1_000)).toContain(uuidOf(firm));
    const left = await countTenantRows(stack.platform.ownerPool, uuidOf(firm), catalog);
    // Every table is empty for the firm, except the operator's imported AWS cost lines (none here).
    expect(total(left)).toBe(0);
    expect(await countTenantRows(stack.platform.ownerPool, uuidOf(neighbour), tenantTables)).toEqual(neighbourBefore);
    const lifecycle = await stack.platform.tenantData.store.lifecycle(uuidOf(firm));
    expect(lifecycle?.purgedAt).not.toBeNull();
    const afterPurge = await stack.app.inject({
      method: 'POST',
      url: `/v1/tenants/${firm.id}/exports`,
      headers: operator,
    });
    expect(problemOf(afterPurge).body.code).toBe('TENANT_PURGED');
  });

  it('refuses a purge of a tenant that is still active', async () => {
    const firm = await createTenant(stack.app, 'Active');
    const purge = await stack.app.inject({ method: 'POST', url: `/v1/tenants/${firm.id}/purge`, headers: operator });
    expect(problemOf(purge).body.code).toBe('TENANT_NOT_OFFBOARDED');
  });
});
