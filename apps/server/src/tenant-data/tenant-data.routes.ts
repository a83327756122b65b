import { createReadStream } from 'node:fs';
import type { FastifyRequest } from 'fastify';
import { type Static, Type } from 'typebox';
import type { AuditEventInput } from '../audit/audit.types.ts';
import type { OperatorAudit } from '../audit/operator-audit.ts';
import { requestOrigin } from '../audit/request-origin.ts';
import { requireOperator } from '../identity/auth.plugin.ts';
import { AppError } from '../platform/errors.ts';
import type { App } from '../platform/http/http-types.ts';
import { operatorSecurity, problemResponses } from '../platform/http/schemas.ts';
import { formatId, idPattern, parseId } from '../platform/ids.ts';
import type { TenantDataService } from './tenant-data.service.ts';
import type { TenantExport, TenantLifecycle, TierChange } from './tenant-data.types.ts';
import { movePhases } from './tenant-data.types.ts';

/** Operator routes: exports, legal hold, offboarding, purge and tier changes. */

const TenantParams = Type.Object({ tenantId: Type.String({ pattern: idPattern('tenant') }) });
const ExportParams = Type.Object({
  tenantId: Type.String({ pattern: idPattern('tenant') }),
  exportId: Type.String({ pattern: idPattern('tenantExport') }),
});
const TierChangeParams = Type.Object({
  tenantId: Type.String({ pattern: idPattern('tenant') }),
  changeId: Type.String({ pattern: idPattern('tierChange') }),
});

const Timestamp = Type.Union([Type.String({ format: 'date-time' }), Type.Null()]);

const ExportSchema = Type.Object({
  id: Type.String(),
  tenantId: Type.String(),
  status: Type.Union([
    Type.Literal('queued'),
    Type.Literal('running'),
    Type.Literal('succeeded'),
    Type.Literal('failed'),
  ]),
  jobId: Type.Union([Type.String(), Type.Null()]),
  sizeBytes: Type.Union([Type.Integer(), Type.Null()]),
  sha256: Type.Union([Type.String(), Type.Null()]),
  manifest: Type.Union([Type.Unknown(), Type.Null()]),
  downloadUrl: Type.Union([Type.String(), Type.Null()]),
  error: Type.Union([Type.String(), Type.Null()]),
  createdAt: Type.String({ format: 'date-time' }),
  finishedAt: Timestamp,
});

const LifecycleSchema = Type.Object({
  tenantId: Type.String(),
  status: Type.String(),
  tier: Type.String(),
  legalHold: Type.Union([
    Type.Object({ reason: Type.String(), setAt: Type.String({ format: 'date-time' }) }),
    Type.Null(),
  ]),
  offboardedAt: Timestamp,
  purgeAfter: Timestamp,
  purgedAt: Timestamp,
  exportId: Type.Optional(Type.Union([Type.String(), Type.Null()])),
});

const PlacementSchema = Type.Object({ model: Type.String(), cluster: Type.String(), database: Type.String() });

const TierChangeSchema = Type.Object({
  id: Type.String(),
  tenantId: Type.String(),
  fromTier: Type.String(),
  toTier: Type.String(),
  status: Type.Union([
    Type.Literal('queued'),
    Type.Literal('running'),
    Type.Literal('succeeded'),
    Type.Literal('failed'),
  ]),
  phase: Type.Union(movePhases.map((phase) => Type.Literal(phase))),
  progress: Type.Object({ rowsCopied: Type.Integer(), rowsTotal: Type.Integer(), percent: Type.Integer() }),
  sourcePlacement: PlacementSchema,
  targetPlacement: Type.Union([PlacementSchema, Type.Null()]),
  jobId: Type.Union([Type.String(), Type.Null()]),
  result: Type.Union([Type.Unknown(), Type.Null()]),
  error: Type.Union([Type.String(), Type.Null()]),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
  finishedAt: Timestamp,
});

const TierChangeBody = Type.Object(
  { tier: Type.String({ minLength: 1, maxLength: 64 }) },
  { additionalProperties: false },
);
const LegalHoldBody = Type.Object(
  { reason: Type.String({ minLength: 1, maxLength: 1000, pattern: '\\S' }) },
  { additionalProperties: false },
);
const OffboardQuery = Type.Object(
  { force: Type.Optional(Type.Union([Type.Literal('true'), Type.Literal('false')])) },
  { additionalProperties: false },
);

function tenantUuid(publicId: string): string {
  const id = parseId('tenant', publicId);
  if (!id) throw new AppError('TENANT_NOT_FOUND');
  return id;
}

function iso(date: Date | null): string | null {
  return date === null ? null : date.toISOString();
}

export function renderExport(record: TenantExport) {
  const tenantId = formatId('tenant', record.tenantId);
  const id = formatId('tenantExport', record.id);
  return {
    id,
    tenantId,
    status: record.status,
    jobId: record.jobId === null ? null : formatId('job', record.jobId),
    sizeBytes: record.sizeBytes,
    sha256: record.sha256,
    manifest: record.manifest,
    downloadUrl: record.status === 'succeeded' ? `/v1/tenants/${tenantId}/exports/${id}/download` : null,
    error: record.error,
    createdAt: record.createdAt.toISOString(),
    finishedAt: iso(record.finishedAt),
  };
}

function renderLifecycle(record: TenantLifecycle, exportId?: string | null): Static<typeof LifecycleSchema> {
  return {
    tenantId: formatId('tenant', record.tenantId),
    status: record.status,
    tier: record.tier,
    legalHold: record.legalHold
      ? { reason: record.legalHold.reason, setAt: record.legalHold.setAt.toISOString() }
      : null,
    offboardedAt: iso(record.offboardedAt),
    purgeAfter: iso(record.purgeAfter),
    purgedAt: iso(record.purgedAt),
    ...(exportId === undefined ? {} : { exportId: exportId === null ? null : formatId('tenantExport', exportId) }),
  };
}

export function renderTierChange(change: TierChange) {
  const percent = change.rowsTotal > 0 ? Math.floor((change.rowsCopied / change.rowsTotal) * 100) : 0;
  return {
    id: formatId('tierChange', change.id),
    tenantId: formatId('tenant', change.tenantId),
    fromTier: change.fromTier,
    toTier: change.toTier,
    status: change.status,
    phase: change.phase,
    progress: {
      rowsCopied: change.rowsCopied,
      rowsTotal: change.rowsTotal,
      percent: change.status === 'succeeded' ? 100 : Math.min(percent, 99),
    },
    sourcePlacement: change.sourcePlacement,
    targetPlacement: change.targetPlacement,
    jobId: change.jobId === null ? null : formatId('job', change.jobId),
    result: change.result,
    error: change.error,
    createdAt: change.createdAt.toISOString(),
    updatedAt: change.updatedAt.toISOString(),
    finishedAt: iso(change.finishedAt),
  };
}

export async function tenantDataRoutes(
  app: App,
  options: { tenantData: TenantDataService; operatorAudit: OperatorAudit },
): Promise<void> {
  const { tenantData, operatorAudit } = options;
  // Each change is written to the tenant's audit log with the operator as actor.
  const audited = <T>(
    request: FastifyRequest,
    tenantId: string,
    change: () => Promise<T>,
    eventOf: (result: T) => AuditEventInput,
  ) => operatorAudit.record(tenantId, requestOrigin(request, requireOperator(request)), change, eventOf);
  const tenantResource = (tenantId: string) => ({ type: 'tenant', id: formatId('tenant', tenantId) });
  app.addHook('onRequest', app.authenticateOperator);
  const common = { tags: ['operator'], security: operatorSecurity };

  app.post(
    '/v1/tenants/:tenantId/exports',
    {
      schema: {
        ...common,
        summary: "Export a tenant's complete data (JSON Lines per table and a manifest, as tar.gz)",
        params: TenantParams,
        response: { 202: ExportSchema, ...problemResponses },
      },
    },
    async (request, reply) => {
      const tenantId = tenantUuid(request.params.tenantId);
      const created = await audited(
        request,
        tenantId,
        () => tenantData.requestExport(tenantId),
        (requested) => ({
          action: 'tenant.export',
          resource: { type: 'tenant_export', id: formatId('tenantExport', requested.id) },
          after: requested,
        }),
      );
      const body = renderExport(created);
      return reply.code(202).header('location', `/v1/tenants/${body.tenantId}/exports/${body.id}`).send(body);
    },
  );

  app.get(
    '/v1/tenants/:tenantId/exports/:exportId',
    {
      schema: {
        ...common,
        summary: 'Read an export: status, manifest and download link',
        params: ExportParams,
        response: { 200: ExportSchema, ...problemResponses },
      },
    },
    async (request) => {
      const exportId = parseId('tenantExport', request.params.exportId);
      if (!exportId) throw new AppError('TENANT_EXPORT_NOT_FOUND');
      return renderExport(await tenantData.getExport(tenantUuid(request.params.tenantId), exportId));
    },
  );

  app.get(
    '/v1/tenants/:tenantId/exports/:exportId/download',
    {
      schema: {
        ...common,
        summary: 'Download an export archive (application/gzip)',
        params: ExportParams,
        response: { 200: Type.Unknown({ description: 'The tar.gz archive.' }), ...problemResponses },
      },
    },
    async (request, reply) => {
      const exportId = parseId('tenantExport', request.params.exportId);
      if (!exportId) throw new AppError('TENANT_EXPORT_NOT_FOUND');
      const file = await tenantData.exportFile(tenantUuid(request.params.tenantId), exportId);
      const name = `${request.params.tenantId}-${request.params.exportId}.tar.gz`;
      return reply
        .type('application/gzip')
        .header('content-disposition', `attachment; filename="${name}"`)
        .header('x-content-sha256', file.export.sha256 ?? '')
        .send(createReadStream(file.path));
    },
  );

  app.put(
    '/v1/tenants/:tenantId/legal-hold',
    {
      schema: {
        ...common,
        summary: "Set a legal hold: the tenant's data is never purged while it holds",
        params: TenantParams,
        body: LegalHoldBody,
        response: { 200: LifecycleSchema, ...problemResponses },
      },
    },
    async (request) => {
      const tenantId = tenantUuid(request.params.tenantId);
      const reason = request.body.reason.trim();
      const lifecycle = await audited(
        request,
        tenantId,
        () => tenantData.setLegalHold(tenantId, reason),
        (updated) => ({
          action: 'tenant.legal_hold.set',
          resource: tenantResource(tenantId),
          after: updated,
          summary: { reason: reason.slice(0, 500) },
        }),
      );
      return renderLifecycle(lifecycle);
    },
  );

  app.delete(
    '/v1/tenants/:tenantId/legal-hold',
    {
      schema: {
        ...common,
        summary: 'Clear the legal hold',
        params: TenantParams,
        response: { 200: LifecycleSchema, ...problemResponses },
      },
    },
    async (request) => {
      const tenantId = tenantUuid(request.params.tenantId);
      const lifecycle = await audited(
        request,
        tenantId,
        () => tenantData.clearLegalHold(tenantId),
        (updated) => ({ action: 'tenant.legal_hold.clear', resource: tenantResource(tenantId), after: updated }),
      );
      return renderLifecycle(lifecycle);
    },
  );

  app.delete(
    '/v1/tenants/:tenantId',
    {
      schema: {
        ...common,
        summary: 'Offboard a tenant: refuse its requests and schedule the purge after the tier retention',
        description:
          'Refused while a legal hold is set, and when no export has finished unless `force=true` (force never overrides a legal hold).',
        params: TenantParams,
        querystring: OffboardQuery,
        response: { 200: LifecycleSchema, ...problemResponses },
      },
    },
    async (request) => {
      const tenantId = tenantUuid(request.params.tenantId);
      const force = request.query.force === 'true';
      const outcome = await audited(
        request,
        tenantId,
        () => tenantData.offboard(tenantId, { force }),
        (result) => ({
          action: 'tenant.offboard',
          resource: tenantResource(tenantId),
          after: result.lifecycle,
          summary: { force },
        }),
      );
      return renderLifecycle(outcome.lifecycle, outcome.exportId);
    },
  );

  app.post(
    '/v1/tenants/:tenantId/purge',
    {
      schema: {
        ...common,
        summary: "Purge an offboarded tenant's data now, before its retention ends (refused under legal hold)",
        params: TenantParams,
        response: {
          200: Type.Object({ tenantId: Type.String(), deleted: Type.Record(Type.String(), Type.Integer()) }),
          ...problemResponses,
        },
      },
    },
    async (request) => {
      const outcome = await tenantData.purge(tenantUuid(request.params.tenantId));
      return { tenantId: request.params.tenantId, deleted: outcome.deleted };
    },
  );

  app.post(
    '/v1/tenants/:tenantId/tier-changes',
    {
      schema: {
        ...common,
        summary: "Change a tenant's tier, moving its data live to the new tier's placement",
        params: TenantParams,
        body: TierChangeBody,
        response: { 202: TierChangeSchema, ...problemResponses },
      },
    },
    async (request, reply) => {
      const tenantId = tenantUuid(request.params.tenantId);
      const change = await audited(
        request,
        tenantId,
        () => tenantData.requestTierChange(tenantId, request.body.tier),
        (requested) => ({
          action: 'tenant.tier_change',
          resource: { type: 'tier_change', id: formatId('tierChange', requested.id) },
          after: requested,
          summary: { tier: request.body.tier },
        }),
      );
      const body = renderTierChange(change);
      return reply.code(202).header('location', `/v1/tenants/${body.tenantId}/tier-changes/${body.id}`).send(body);
    },
  );

  app.get(
    '/v1/tenants/:tenantId/tier-changes/:changeId',
    {
      schema: {
        ...common,
        summary: 'Read a tier change: phase, progress (rows copied of total) and result',
        params: TierChangeParams,
        response: { 200: TierChangeSchema, ...problemResponses },
      },
    },
    async (request) => {
      const changeId = parseId('tierChange', request.params.changeId);
      if (!changeId) throw new AppError('TIER_CHANGE_NOT_FOUND');
      return renderTierChange(await tenantData.getTierChange(tenantUuid(request.params.tenantId), changeId));
    },
  );
}
