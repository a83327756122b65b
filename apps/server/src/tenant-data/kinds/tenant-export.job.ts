import path from 'node:path';
import type { JobKind, JsonValue } from '../../jobs/jobs.types.ts';
import { PermanentJobError } from '../../jobs/jobs.types.ts';
import { assert } from '../../platform/assert.ts';
import { writeTenantExport } from '../export-archive.ts';
import { tenantDataLimits } from '../tenant-data.limits.ts';
import { type TenantDataService, tenantExportKind } from '../tenant-data.service.ts';

/**
 * `tenant.export`: writes the tenant's complete data as a tar.gz under the server home and
 * records its manifest, size and SHA-256. A retried attempt writes the whole archive again
 * (it replaces the file atomically), so a crash mid-way leaves no half archive behind.
 */
interface ExportPayload {
  exportId: string;
}

function parsePayload(payload: JsonValue): ExportPayload {
  assert(typeof payload === 'object' && payload !== null && !Array.isArray(payload), 'export payload is an object');
  const { exportId } = payload;
  assert(typeof exportId === 'string' && /^[0-9a-f-]{36}$/.test(exportId), 'export payload names its export');
  return { exportId };
}

export function tenantExportJob(service: TenantDataService): JobKind<ExportPayload> {
  return {
    kind: tenantExportKind,
    parsePayload,
    maxAttempts: tenantDataLimits.exportMaxAttempts,
    timeoutMs: tenantDataLimits.jobTimeoutMs,
    async run(context): Promise<JsonValue> {
      const tenantId = context.job.tenantId;
      const { exportId } = context.payload;
      const record = await service.store.findExport(tenantId, exportId);
      if (!record) throw new PermanentJobError(`export ${exportId} of tenant ${tenantId} does not exist`);
      if (record.status === 'succeeded') return { exportId, status: 'succeeded', rows: null };
      await service.store.exportStarted(exportId);
      try {
        const fileName = service.exportFileName(tenantId, exportId);
        const written = await service.withExportSources(tenantId, (sources) =>
          writeTenantExport({
            sources,
            tenantId,
            exportId,
            archivePath: path.join(service.home, fileName),
            signal: context.signal,
            onTable: (done, total) => context.progress(Math.floor((done / total) * 99), `${done} of ${total} tables`),
          }),
        );
        await service.store.exportSucceeded(exportId, { fileName, ...written });
        const rows = written.manifest.tables.reduce((sum, table) => sum + table.rows, 0);
        context.log.info({ exportId, rows, sizeBytes: written.sizeBytes }, 'tenant export written');
        const result: JsonValue = {
          exportId,
          status: 'succeeded',
          rows,
          sizeBytes: written.sizeBytes,
          sha256: written.sha256,
        };
        return result;
      } catch (error) {
        // The record shows the failure at once; the queue may still retry the job.
        await service.store.exportFailed(exportId, error instanceof Error ? error.message : String(error));
        throw error;
      }
    },
  };
}
