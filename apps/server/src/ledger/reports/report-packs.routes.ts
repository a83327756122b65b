import { Type } from 'typebox';
import { requirePermission } from '../../identity/access.ts';
import { requirePrincipal } from '../../identity/auth.plugin.ts';
import { JobAccepted } from '../../jobs/jobs.accepted.ts';
import type { App } from '../../platform/http/http-types.ts';
import { sendIdempotent } from '../../platform/http/idempotent-reply.ts';
import { IdempotencyHeaders, problemResponses, tenantSecurity } from '../../platform/http/schemas.ts';
import { formatId, idPattern } from '../../platform/ids.ts';
import { checkDate } from '../dates.ts';
import { DateSchema, decodeCursor, EntityParams, encodeCursor, pathId, uuidPattern } from '../ledger.http.ts';
import { ledgerLimits } from '../ledger.limits.ts';
import { packFormats, type ReportPacksService } from './report-packs.ts';

const PackRequest = Type.Object(
  {
    from: Type.Optional(DateSchema),
    to: DateSchema,
    formats: Type.Array(Type.Union(packFormats.map((format) => Type.Literal(format))), {
      minItems: 1,
      maxItems: packFormats.length,
      default: [...packFormats],
    }),
  },
  { additionalProperties: false },
);

const PackSummarySchema = Type.Object({
  id: Type.String({ pattern: idPattern('job'), description: 'The id of the job that made the pack.' }),
  from: Type.String(),
  to: Type.String(),
  files: Type.Array(Type.Object({ name: Type.String(), bytes: Type.Integer(), sha256: Type.String() })),
  sizeBytes: Type.Integer(),
  sha256: Type.String({ description: 'SHA-256 of the ZIP archive, hex.' }),
  requestedBy: Type.String(),
  createdAt: Type.String({ format: 'date-time' }),
  links: Type.Object({ archive: Type.String(), job: Type.String() }),
});

export async function reportPackRoutes(app: App, options: { packs: ReportPacksService }): Promise<void> {
  const { packs } = options;
  app.addHook('onRequest', app.authenticateTenant);

  app.post(
    '/v1/entities/:entityId/report-packs',
    {
      // Queueing batch work: shed first under overload, like an import.
      config: { routeClass: 'batch', ...requirePermission('ledger.reports.read') },
      schema: {
        summary: "Queue a report pack: the period's trial balance, income statement and balance sheet as one ZIP",
        description:
          'Answers 202 with the job to watch. The pack holds each statement in every format asked for (pdf, xlsx, csv) and a manifest.json with each file’s SHA-256 and the statements’ checks (balanced, ties to the journal). `to` is the balance date; `from` starts the income statement (default: the fiscal year’s first day). Download it from the job result’s `links.archive`.',
        tags: ['reports', 'jobs'],
        security: tenantSecurity,
        params: EntityParams,
        headers: IdempotencyHeaders,
        body: PackRequest,
        response: { 202: JobAccepted, ...problemResponses },
      },
    },
    async (request, reply) => {
      const principal = requirePrincipal(request);
      const entityId = pathId('entity', request.params.entityId, 'ENTITY_NOT_FOUND');
      const body = request.body;
      const result = await packs.queue(
        principal.tenant,
        principal.userId,
        {
          entityId,
          from: body.from === undefined ? null : checkDate(body.from, 'from'),
          to: checkDate(body.to, 'to'),
          formats: body.formats,
          requestedBy: principal.tenant.origin?.actor.id ?? formatId('user', principal.userId),
        },
        {
          key: request.headers['idempotency-key'],
          route: `POST /v1/entities/${entityId}/report-packs`,
          body,
        },
      );
      return sendIdempotent(reply, result, (body) => body.links.job);
    },
  );

  app.get(
    '/v1/entities/:entityId/report-packs',
    {
      config: { routeClass: 'read', ...requirePermission('ledger.reports.read') },
      schema: {
        summary: "The entity's report packs, newest first (without their archives)",
        tags: ['reports'],
        security: tenantSecurity,
        params: EntityParams,
        querystring: Type.Object(
          {
            limit: Type.Integer({
              minimum: 1,
              maximum: ledgerLimits.pageSizeMax,
              default: ledgerLimits.pageSizeDefault,
            }),
            cursor: Type.Optional(Type.String({ maxLength: 400 })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            items: Type.Array(PackSummarySchema),
            nextCursor: Type.Union([Type.String(), Type.Null()]),
          }),
          ...problemResponses,
        },
      },
    },
    async (request) => {
      const principal = requirePrincipal(request);
      const entityId = pathId('entity', request.params.entityId, 'ENTITY_NOT_FOUND');
      const after = decodeCursor(request.query.cursor, (value) =>
        typeof value.createdAt === 'string' &&
        value.createdAt.length <= 40 &&
        !Number.isNaN(Date.parse(value.createdAt)) &&
        typeof value.id === 'string' &&
        uuidPattern.test(value.id)
          ? { createdAt: value.createdAt, id: value.id }
          : null,
      );
      const page = await packs.list(principal.tenant, entityId, after, request.query.limit);
      const entity = formatId('entity', entityId);
      return {
        items: page.items.map((pack) => {
          const id = formatId('job', pack.id);
          return {
            ...pack,
            id,
            createdAt: pack.createdAt.toISOString(),
            links: { archive: `/v1/entities/${entity}/report-packs/${id}/archive`, job: `/v1/jobs/${id}` },
          };
        }),
        nextCursor: encodeCursor(page.next),
      };
    },
  );

  app.get(
    '/v1/entities/:entityId/report-packs/:packId/archive',
    {
      config: { routeClass: 'read', ...requirePermission('ledger.reports.read') },
      schema: {
        summary: 'Download a report pack (application/zip)',
        tags: ['reports'],
        security: tenantSecurity,
        params: Type.Object({ entityId: Type.String({ maxLength: 100 }), packId: Type.String({ maxLength: 100 }) }),
        response: { 200: Type.Unknown({ description: 'The ZIP archive.' }), ...problemResponses },
      },
    },
    async (request, reply) => {
      const principal = requirePrincipal(request);
      const entityId = pathId('entity', request.params.entityId, 'ENTITY_NOT_FOUND');
      const packId = pathId('job', request.params.packId, 'REPORT_PACK_NOT_FOUND');
      const pack = await packs.archive(principal.tenant, entityId, packId);
      return reply
        .type('application/zip')
        .header('content-disposition', `attachment; filename="report-pack-${pack.to}.zip"`)
        .send(pack.archive);
    },
  );
}
