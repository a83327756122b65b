import type { OperatorAudit } from '../audit/operator-audit.ts';
import { requestOrigin } from '../audit/request-origin.ts';
import { requireOperator } from '../identity/auth.plugin.ts';
import { AppError } from '../platform/errors.ts';
import type { App } from '../platform/http/http-types.ts';
import { operatorSecurity, problemResponses } from '../platform/http/schemas.ts';
import { formatId, parseId } from '../platform/ids.ts';
import type { ProvisioningPlan, StepLogEntry } from './provisioning/provisioning.types.ts';
import {
  CreateTenantBody,
  CreateTenantQuery,
  HotTenantReportSchema,
  HotTenantsQuery,
  ListTenantsQuery,
  SuspendBody,
  TenantPageSchema,
  TenantParams,
  TenantPlanSchema,
  TenantSchema,
} from './routes/tenant-schemas.ts';
import type { TenancyService } from './tenancy.service.ts';
import type { TenantRecord } from './tenancy.types.ts';

export function renderTenantSummary(record: TenantRecord) {
  return {
    id: formatId('tenant', record.id),
    name: record.name,
    tier: record.tier,
    regulatoryTier: record.regulatoryTier,
    status: record.status,
    statusReason: record.statusReason ?? null,
    placement: record.placement,
    createdAt: record.createdAt.toISOString(),
    updatedAt: record.updatedAt.toISOString(),
  };
}

function renderStep(step: StepLogEntry) {
  return {
    ...step,
    startedAt: step.startedAt?.toISOString() ?? null,
    finishedAt: step.finishedAt?.toISOString() ?? null,
  };
}

export function renderTenant(record: TenantRecord, steps: readonly StepLogEntry[]) {
  return { ...renderTenantSummary(record), provisioning: { steps: steps.map(renderStep) } };
}

function renderPlan(plan: ProvisioningPlan) {
  return {
    dryRun: true as const,
    tenant: { id: formatId('tenant', plan.tenantId), name: plan.name, tier: plan.tier, placement: plan.placement },
    steps: plan.steps,
  };
}

/** The cursor is opaque to clients: the last tenant id of the page, base64url-encoded. */
function decodeCursor(cursor: string | undefined): string | null {
  if (cursor === undefined) return null;
  const id = parseId('tenant', Buffer.from(cursor, 'base64url').toString('utf8'));
  if (id === null) throw new AppError('PAGINATION_CURSOR_INVALID');
  return id;
}

function encodeCursor(id: string | null): string | null {
  return id === null ? null : Buffer.from(formatId('tenant', id)).toString('base64url');
}

function tenantUuid(publicId: string): string {
  const id = parseId('tenant', publicId);
  if (id === null) throw new AppError('TENANT_NOT_FOUND');
  return id;
}

/** Operator routes of the control plane: onboarding, the registry, provisioning, suspension. */
export async function tenancyRoutes(
  app: App,
  options: { tenancy: TenancyService; operatorAudit: OperatorAudit },
): Promise<void> {
  const { tenancy, operatorAudit } = options;
  app.addHook('onRequest', app.authenticateOperator);

  const detail = async (id: string) => {
    const record = await tenancy.getTenant(id);
    if (!record) throw new AppError('TENANT_NOT_FOUND');
    return renderTenant(record, await tenancy.provisioningSteps(id));
  };

  app.post(
    '/v1/tenants',
    {
      schema: {
        summary: 'Onboard a firm: apply its provisioning plan (or, with dryRun=true, only show the plan)',
        tags: ['operator'],
        security: operatorSecurity,
        querystring: CreateTenantQuery,
        body: CreateTenantBody,
        response: { 200: TenantPlanSchema, 201: TenantSchema, ...problemResponses },
      },
    },
    async (request, reply) => {
      if (request.query.dryRun === true)
        return reply.code(200).send(renderPlan(await tenancy.planTenant(request.body)));
      const record = await tenancy.createTenant(request.body, requestOrigin(request, requireOperator(request)));
      return reply
        .code(201)
        .header('location', `/v1/tenants/${formatId('tenant', record.id)}`)
        .send(renderTenant(record, await tenancy.provisioningSteps(record.id)));
    },
  );

  app.get(
    '/v1/tenants',
    {
      schema: {
        summary: 'List the registry, oldest first, with an opaque cursor',
        tags: ['operator'],
        security: operatorSecurity,
        querystring: ListTenantsQuery,
        response: { 200: TenantPageSchema, ...problemResponses },
      },
    },
    async (request) => {
      const { limit, cursor, status, tier } = request.query;
      const page = await tenancy.listTenants({
        afterId: decodeCursor(cursor),
        limit,
        ...(status ? { status } : {}),
        ...(tier ? { tier } : {}),
      });
      return { items: page.items.map(renderTenantSummary), nextCursor: encodeCursor(page.nextAfterId) };
    },
  );

  app.get(
    '/v1/tenants/:tenantId',
    {
      schema: {
        summary: 'Read a tenant: tier, placement, status and provisioning step log',
        tags: ['operator'],
        security: operatorSecurity,
        params: TenantParams,
        response: { 200: TenantSchema, ...problemResponses },
      },
    },
    async (request) => await detail(tenantUuid(request.params.tenantId)),
  );

  app.post(
    '/v1/tenants/:tenantId/provisioning',
    {
      schema: {
        summary: "Apply a tenant's provisioning plan again (repairs a failed or interrupted onboarding)",
        tags: ['operator'],
        security: operatorSecurity,
        params: TenantParams,
        response: { 200: TenantSchema, ...problemResponses },
      },
    },
    async (request) => {
      const id = tenantUuid(request.params.tenantId);
      await tenancy.applyProvisioning(id);
      return await detail(id);
    },
  );

  app.post(
    '/v1/tenants/:tenantId/suspend',
    {
      schema: {
        summary: 'Suspend a tenant: its requests get 403 TENANT_SUSPENDED, its data is kept',
        tags: ['operator'],
        security: operatorSecurity,
        params: TenantParams,
        body: SuspendBody,
        response: { 200: TenantSchema, ...problemResponses },
      },
    },
    async (request) => {
      const id = tenantUuid(request.params.tenantId);
      const reason = request.body?.reason ?? null;
      await operatorAudit.record(
        id,
        requestOrigin(request, requireOperator(request)),
        () => tenancy.suspend(id, reason),
        ({ record, changed }) =>
          changed
            ? {
                action: 'tenant.suspend',
                resource: { type: 'tenant', id: formatId('tenant', id) },
                before: { status: 'active' },
                after: { status: record.status, reason },
                summary: { reason },
              }
            : null,
      );
      return await detail(id);
    },
  );

  app.post(
    '/v1/tenants/:tenantId/resume',
    {
      schema: {
        summary: 'Resume a suspended tenant',
        tags: ['operator'],
        security: operatorSecurity,
        params: TenantParams,
        response: { 200: TenantSchema, ...problemResponses },
      },
    },
    async (request) => {
      const id = tenantUuid(request.params.tenantId);
      await operatorAudit.record(
        id,
        requestOrigin(request, requireOperator(request)),
        () => tenancy.resume(id),
        ({ record, changed }) =>
          changed
            ? {
                action: 'tenant.resume',
                resource: { type: 'tenant', id: formatId('tenant', id) },
                before: { status: 'suspended' },
                after: { status: record.status },
              }
            : null,
      );
      return await detail(id);
    },
  );

  app.get(
    '/v1/admin/hot-tenants',
    {
      schema: {
        summary: "Tenants whose share of a shared cluster's load suggests a dedicated database",
        tags: ['operator'],
        security: operatorSecurity,
        querystring: HotTenantsQuery,
        response: { 200: HotTenantReportSchema, ...problemResponses },
      },
    },
    async (request) => {
      const report = await tenancy.hotTenants(request.query.hours, request.query.sharePercent);
      return {
        from: report.from.toISOString(),
        to: report.to.toISOString(),
        sharePercent: report.sharePercent,
        tenants: report.tenants.map((tenant) => ({
          ...tenant,
          tenantId: formatId('tenant', tenant.tenantId),
          databaseUs: tenant.databaseUs.toString(),
          requests: tenant.requests.toString(),
        })),
      };
    },
  );
}
