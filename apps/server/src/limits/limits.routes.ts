import { Type } from 'typebox';
import type { OperatorAudit } from '../audit/operator-audit.ts';
import { requestOrigin } from '../audit/request-origin.ts';
import { requireOperator } from '../identity/auth.plugin.ts';
import { AppError } from '../platform/errors.ts';
import type { App } from '../platform/http/http-types.ts';
import { operatorSecurity, problemResponses } from '../platform/http/schemas.ts';
import { formatId, idPattern, parseId } from '../platform/ids.ts';
import type { LimitsService, TenantPlanView } from './limits.service.ts';
import { PlanOverridesSchema } from './plan-overrides.schema.ts';

const Count = Type.Integer({ minimum: 0 });

const UsagePlanSchema = Type.Object({
  ratePerSecond: Type.Integer(),
  burst: Type.Integer(),
  quota: Type.Object({
    limit: Type.Integer(),
    period: Type.Union([Type.Literal('DAY'), Type.Literal('WEEK'), Type.Literal('MONTH')]),
    offsetDays: Type.Integer(),
  }),
  routeWeights: Type.Record(Type.String(), Type.Integer()),
});

const TenantPlanSchema = Type.Object({
  tenantId: Type.String({ pattern: idPattern('tenant') }),
  tier: Type.String(),
  overrides: PlanOverridesSchema,
  effective: Type.Object({
    usagePlan: UsagePlanSchema,
    limits: Type.Object({
      statementTimeoutMs: Type.Integer(),
      inFlightRequestsMax: Type.Integer(),
      databaseConnectionsMax: Type.Integer(),
    }),
  }),
});

const AlertSchema = Type.Object({
  code: Type.String(),
  message: Type.String(),
  since: Type.String({ format: 'date-time' }),
});

const LimitsReportSchema = Type.Object({
  instance: Type.Object({
    requestsInFlight: Count,
    requestsInFlightMax: Count,
    shedReportsAtPercent: Count,
    shedBatchAtPercent: Count,
    connectionShareBudget: Count,
    interactiveInFlight: Count,
    batchWaits: Count,
    batchWaitsTimedOut: Count,
    batchWaitMs: Count,
    batchSharePercent: Count,
    batchPaced: Count,
    batchPacedMs: Count,
    firmsBusyElsewhere: Type.Boolean({
      description:
        'Another instance announced firms using it within the last second (or the signal is lost): batch work here is paced too.',
    }),
  }),
  store: Type.Object({
    kind: Type.Union([Type.Literal('memory'), Type.Literal('redis')]),
    state: Type.Union([Type.Literal('healthy'), Type.Literal('degraded')]),
  }),
  alerts: Type.Array(AlertSchema),
  tenants: Type.Array(
    Type.Object({
      tenantId: Type.String({ pattern: idPattern('tenant') }),
      accepted: Count,
      throttled: Count,
      rateLimited: Count,
      quotaExhausted: Count,
      concurrencyLimited: Count,
      connectionsBusy: Count,
      shed: Count,
      inFlight: Count,
      databaseConnectionsHeld: Count,
      jobs: Type.Union([Type.Object({ queued: Count, running: Count }), Type.Null()]),
    }),
  ),
});

const TenantParams = Type.Object({ tenantId: Type.String({ pattern: idPattern('tenant') }) });

function renderPlan(view: TenantPlanView) {
  return {
    tenantId: formatId('tenant', view.tenantId),
    tier: view.tier,
    overrides: view.overrides,
    effective: { usagePlan: view.effective.usagePlan, limits: view.effective.bounds },
  };
}

function tenantIdOf(publicId: string): string {
  const id = parseId('tenant', publicId);
  if (id === null) throw new AppError('TENANT_NOT_FOUND');
  return id;
}

/** Operator routes: per-tenant plan overrides and the limits report. */
export async function limitsRoutes(
  app: App,
  options: { limits: LimitsService; operatorAudit: OperatorAudit },
): Promise<void> {
  const { limits, operatorAudit } = options;
  app.addHook('onRequest', app.authenticateOperator);

  app.get(
    '/v1/tenants/:tenantId/plan',
    {
      schema: {
        summary: "Read a tenant's usage plan: tier, overrides and the effective plan",
        tags: ['operator'],
        security: operatorSecurity,
        params: TenantParams,
        response: { 200: TenantPlanSchema, ...problemResponses },
      },
    },
    async (request) => renderPlan(await limits.getPlan(tenantIdOf(request.params.tenantId))),
  );

  app.put(
    '/v1/tenants/:tenantId/plan',
    {
      schema: {
        summary: "Replace a tenant's plan overrides ({} returns it to its tier's plan)",
        tags: ['operator'],
        security: operatorSecurity,
        params: TenantParams,
        body: PlanOverridesSchema,
        response: { 200: TenantPlanSchema, ...problemResponses },
      },
    },
    async (request) => {
      const tenantId = tenantIdOf(request.params.tenantId);
      const origin = requestOrigin(request, requireOperator(request));
      const change = async () => {
        const before = await limits.getPlan(tenantId);
        return { before, after: await limits.setOverrides(tenantId, request.body) };
      };
      const { after } = await operatorAudit.record(tenantId, origin, change, ({ before, after }) => ({
        action: 'plan.override',
        resource: { type: 'tenant', id: formatId('tenant', tenantId) },
        before: before.overrides,
        after: after.overrides,
        summary: { tier: after.tier, cleared: Object.keys(request.body).length === 0 },
      }));
      return renderPlan(after);
    },
  );

  app.get(
    '/v1/admin/limits',
    {
      schema: {
        summary: 'Per-tenant accepted, throttled, shed and in-flight counts of this instance; store health and alerts',
        tags: ['operator'],
        security: operatorSecurity,
        response: { 200: LimitsReportSchema, ...problemResponses },
      },
    },
    async () => {
      const snapshot = await limits.snapshot();
      return {
        instance: snapshot.instance,
        store: { kind: snapshot.store.kind, state: snapshot.store.state },
        alerts: snapshot.alerts.map((alert) => ({ ...alert, since: alert.since.toISOString() })),
        tenants: snapshot.tenants.map(({ tenantId, counts, jobs }) => ({
          tenantId: formatId('tenant', tenantId),
          ...counts,
          throttled: counts.rateLimited + counts.quotaExhausted + counts.concurrencyLimited + counts.connectionsBusy,
          jobs,
        })),
      };
    },
  );
}
