import { type Static, Type } from 'typebox';
import { requirePermission } from '../identity/access.ts';
import { requirePrincipal } from '../identity/auth.plugin.ts';
import { AppError } from '../platform/errors.ts';
import type { App } from '../platform/http/http-types.ts';
import { operatorSecurity, problemResponses, tenantSecurity } from '../platform/http/schemas.ts';
import { formatId, idPattern, parseId } from '../platform/ids.ts';
import { toCsv } from './csv.ts';
import type { Metering } from './metering.runtime.ts';
import type { MeteringService, UsageReport } from './metering.service.ts';
import type { UsageStore } from './metering.store.ts';

const FormatQuery = Type.Union([Type.Literal('json'), Type.Literal('csv')], { default: 'json' });

const UsageQuery = Type.Object(
  {
    from: Type.String({ format: 'date-time' }),
    to: Type.String({ format: 'date-time' }),
    granularity: Type.Union([Type.Literal('hour'), Type.Literal('day'), Type.Literal('month')], { default: 'day' }),
    format: FormatQuery,
  },
  { additionalProperties: false },
);

const UsageReportSchema = Type.Object(
  {
    tenantId: Type.String({ pattern: idPattern('tenant') }),
    granularity: Type.String(),
    from: Type.String({ format: 'date-time' }),
    to: Type.String({ format: 'date-time' }),
    series: Type.Array(
      Type.Object({
        metric: Type.String(),
        kind: Type.String(),
        unit: Type.String(),
        points: Type.Array(
          Type.Object({
            bucketStart: Type.String({ format: 'date-time' }),
            value: Type.Integer({ description: 'Counters: the sum of the bucket; gauges: its largest sample.' }),
            events: Type.Integer(),
          }),
        ),
      }),
    ),
  },
  { $id: 'UsageReport' },
);

const AlertSchema = Type.Object({
  id: Type.String(),
  tenantId: Type.String({ pattern: idPattern('tenant') }),
  tier: Type.String(),
  metric: Type.String(),
  minuteStart: Type.String({ format: 'date-time' }),
  observedPerMinute: Type.Number(),
  baselineMedian: Type.Number(),
  baselineMad: Type.Number(),
  zScore: Type.Number(),
  raisedAt: Type.String({ format: 'date-time' }),
});

function renderUsage(report: UsageReport) {
  return {
    tenantId: formatId('tenant', report.tenantId),
    granularity: report.granularity,
    from: report.from.toISOString(),
    to: report.to.toISOString(),
    series: report.series.map((series) => ({
      metric: series.metric,
      kind: series.kind,
      unit: series.unit,
      points: series.points.map((point) => ({
        bucketStart: point.bucketStart.toISOString(),
        value: Number(point.value),
        events: Number(point.events),
      })),
    })),
  };
}

export function usageCsv(report: UsageReport): string {
  const rows = report.series.flatMap((series) =>
    series.points.map((point) => [
      formatId('tenant', report.tenantId),
      series.metric,
      series.unit,
      report.granularity,
      point.bucketStart.toISOString(),
      point.value,
      point.events,
    ]),
  );
  return toCsv(['tenant_id', 'metric', 'unit', 'granularity', 'bucket_start', 'value', 'events'], rows);
}

async function answerUsage(
  service: MeteringService,
  tenantId: string,
  query: Static<typeof UsageQuery>,
  reply: { type(contentType: string): unknown },
) {
  const report = await service.usage(tenantId, query.granularity, new Date(query.from), new Date(query.to));
  if (query.format === 'csv') {
    reply.type('text/csv; charset=utf-8');
    return usageCsv(report);
  }
  return renderUsage(report);
}

export interface MeteringRoutesOptions {
  metering: Metering;
  service: MeteringService;
  store: UsageStore;
}

/** Operator routes: Prometheus metrics, per-tenant usage, noisy-neighbour alerts. */
async function operatorMeteringRoutes(app: App, options: MeteringRoutesOptions): Promise<void> {
  const { metering, service, store } = options;
  app.addHook('onRequest', app.authenticateOperator);

  app.get(
    '/metrics',
    {
      schema: {
        summary: 'Prometheus metrics (text exposition format), bounded cardinality',
        tags: ['operator'],
        security: operatorSecurity,
        response: { 200: Type.String(), ...problemResponses },
      },
    },
    async (_request, reply) => {
      reply.type(metering.metrics.contentType);
      return await metering.metrics.render();
    },
  );

  app.get(
    '/v1/admin/tenants/:tenantId/usage',
    {
      schema: {
        summary: 'A tenant’s usage series from the rollups (JSON or CSV)',
        tags: ['operator'],
        security: operatorSecurity,
        params: Type.Object({ tenantId: Type.String({ maxLength: 100 }) }, { additionalProperties: false }),
        querystring: UsageQuery,
        response: { 200: Type.Ref('UsageReport'), ...problemResponses },
      },
    },
    async (request, reply) => {
      const id = parseId('tenant', request.params.tenantId);
      if (id === null || (await store.findTenant(id)) === null) throw new AppError('TENANT_NOT_FOUND');
      return await answerUsage(service, id, request.query, reply);
    },
  );

  app.get(
    '/v1/admin/alerts',
    {
      schema: {
        summary: 'Noisy-neighbour alerts raised by this instance, newest first',
        tags: ['operator'],
        security: operatorSecurity,
        response: { 200: Type.Object({ items: Type.Array(AlertSchema) }), ...problemResponses },
      },
    },
    async () => ({
      items: metering.detector.alerts().map((alert) => ({
        ...alert,
        tenantId: formatId('tenant', alert.tenantId),
        minuteStart: alert.minuteStart.toISOString(),
        raisedAt: alert.raisedAt.toISOString(),
      })),
    }),
  );
}

/** The tenant's own usage: the tenant comes from the verified token only. */
async function tenantMeteringRoutes(app: App, options: MeteringRoutesOptions): Promise<void> {
  app.addHook('onRequest', app.authenticateTenant);
  app.get(
    '/v1/usage',
    {
      config: { ...requirePermission('usage.read') },
      schema: {
        summary: 'Your firm’s usage series (JSON or CSV)',
        tags: ['usage'],
        security: tenantSecurity,
        querystring: UsageQuery,
        response: { 200: Type.Ref('UsageReport'), ...problemResponses },
      },
    },
    async (request, reply) => {
      const principal = requirePrincipal(request);
      return await answerUsage(options.service, principal.tenant.tenantId, request.query, reply);
    },
  );
}

export async function meteringRoutes(app: App, options: MeteringRoutesOptions): Promise<void> {
  app.addSchema(UsageReportSchema);
  await app.register(operatorMeteringRoutes, options);
  await app.register(tenantMeteringRoutes, options);
}
