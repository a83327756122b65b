import { Type } from 'typebox';
import { requestOrigin } from '../audit/request-origin.ts';
import { requireOperator } from '../identity/auth.plugin.ts';
import { AppError } from '../platform/errors.ts';
import type { App } from '../platform/http/http-types.ts';
import { operatorSecurity, problemResponses } from '../platform/http/schemas.ts';
import { formatId, idPattern, parseId } from '../platform/ids.ts';
import { CreateTenantBody, TenantSchema } from './routes/tenant-schemas.ts';
import type { TenancyService } from './tenancy.service.ts';
import type { TenantRecord } from './tenancy.types.ts';

export function renderTenant(record: TenantRecord) {
  return {
    id: formatId('tenant', record.id),
    name: record.name,
    tier: record.tier,
    regulatoryTier: record.regulatoryTier,
    status: record.status,
    placement: record.placement,
    createdAt: record.createdAt.toISOString(),
    updatedAt: record.updatedAt.toISOString(),
  };
}

/** Operator routes of the control plane: onboarding and the registry. */
export async function tenancyRoutes(app: App, options: { tenancy: TenancyService }): Promise<void> {
  const { tenancy } = options;
  app.addHook('onRequest', app.authenticateOperator);

  app.post(
    '/v1/tenants',
    {
      schema: {
        summary: 'Onboard a firm: create a tenant and its first admin user',
        tags: ['operator'],
        security: operatorSecurity,
        body: CreateTenantBody,
        response: { 201: TenantSchema, ...problemResponses },
      },
    },
    async (request, reply) => {
      const record = await tenancy.createTenant(request.body, requestOrigin(request, requireOperator(request)));
      return reply
        .code(201)
        .header('location', `/v1/tenants/${formatId('tenant', record.id)}`)
        .send(renderTenant(record));
    },
  );

  app.get(
    '/v1/tenants/:tenantId',
    {
      schema: {
        summary: 'Read a tenant from the registry',
        tags: ['operator'],
        security: operatorSecurity,
        params: Type.Object({ tenantId: Type.String({ pattern: idPattern('tenant') }) }),
        response: { 200: TenantSchema, ...problemResponses },
      },
    },
    async (request) => {
      const id = parseId('tenant', request.params.tenantId);
      const record = id ? await tenancy.getTenant(id) : null;
      if (!record) throw new AppError('TENANT_NOT_FOUND');
      return renderTenant(record);
    },
  );
}
