import { Readable } from 'node:stream';
import { type Static, Type } from 'typebox';
import { requirePermission } from '../identity/access.ts';
import { requireOperator, requirePrincipal } from '../identity/auth.plugin.ts';
import { type CsvValue, toCsv } from '../metering/csv.ts';
import { AppError } from '../platform/errors.ts';
import type { App } from '../platform/http/http-types.ts';
import { operatorSecurity, problemResponses, tenantSecurity } from '../platform/http/schemas.ts';
import { formatId, idPattern, parseId } from '../platform/ids.ts';
import type { TenancyService } from '../tenancy/tenancy.service.ts';
import { tenantContextOf } from '../tenancy/tenancy.service.ts';
import { auditLimits } from './audit.limits.ts';
import type { AuditService } from './audit.service.ts';
import type { AuditEvent, AuditEventFilter, AuditPosition, AuditVerification } from './audit.types.ts';
import type { PlatformAudit } from './platform-audit.ts';

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const hex = (buffer: Buffer | null) => buffer?.toString('hex') ?? null;

const AuditEventSchema = Type.Object(
  {
    id: Type.String({ pattern: idPattern('auditEvent') }),
    lane: Type.Integer({ minimum: 0, description: "Which of the firm's hash chains holds the event." }),
    seq: Type.Integer({ minimum: 1, description: 'The position of the event in its lane.' }),
    occurredAt: Type.String({ format: 'date-time' }),
    actor: Type.Object({
      kind: Type.Union(['user', 'api_key', 'operator', 'system', 'anonymous'].map((kind) => Type.Literal(kind))),
      id: Type.String(),
    }),
    action: Type.String(),
    entityId: Type.Union([Type.String({ pattern: idPattern('entity') }), Type.Null()]),
    resource: Type.Union([Type.Object({ type: Type.String(), id: Type.String() }), Type.Null()]),
    requestId: Type.Union([Type.String(), Type.Null()]),
    sourceAddress: Type.Union([Type.String(), Type.Null()]),
    beforeDigest: Type.Union([Type.String({ description: 'SHA-256 of the record before, hex.' }), Type.Null()]),
    afterDigest: Type.Union([Type.String({ description: 'SHA-256 of the record after, hex.' }), Type.Null()]),
    summary: Type.Union([
      Type.Record(Type.String(), Type.Union([Type.String(), Type.Number(), Type.Boolean(), Type.Null()])),
      Type.Null(),
    ]),
    prevHash: Type.String(),
    hash: Type.String(),
  },
  { $id: 'AuditEvent' },
);

const VerificationSchema = Type.Object({
  ok: Type.Boolean(),
  eventsChecked: Type.Integer({ minimum: 0 }),
  heads: Type.Array(Type.Object({ lane: Type.Integer(), seq: Type.Integer(), hash: Type.String() }), {
    description: "Each lane's head as read when the walk started.",
  }),
  brokenLink: Type.Optional(
    Type.Object({
      lane: Type.Integer(),
      seq: Type.Integer(),
      id: Type.Union([Type.String({ pattern: idPattern('auditEvent') }), Type.Null()]),
      problem: Type.Union([Type.Literal('altered'), Type.Literal('missing'), Type.Literal('reordered')]),
      detail: Type.String(),
    }),
  ),
});

const EventsQuery = Type.Object(
  {
    actor: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'e.g. usr_…, opr_…, bootstrap' })),
    action: Type.Optional(
      Type.String({
        pattern: '^[a-z][a-z0-9_]*(\\.[a-z][a-z0-9_]*)*(\\.\\*)?$',
        maxLength: 100,
        description: 'An action (`journal.post`) or a prefix ending in `.*` (`journal.*`).',
      }),
    ),
    entity: Type.Optional(Type.String({ maxLength: 100, description: 'A client entity id, ent_…' })),
    from: Type.Optional(Type.String({ format: 'date-time', description: 'Inclusive.' })),
    to: Type.Optional(Type.String({ format: 'date-time', description: 'Exclusive.' })),
    limit: Type.Integer({ minimum: 1, maximum: auditLimits.pageSizeMax, default: auditLimits.pageSizeDefault }),
    cursor: Type.Optional(Type.String({ maxLength: 100 })),
    format: Type.Union([Type.Literal('json'), Type.Literal('csv'), Type.Literal('jsonl')], {
      default: 'json',
      description: 'json: one page; csv and jsonl: every matching event (an export), ignoring limit and cursor.',
    }),
  },
  { additionalProperties: false },
);

export function renderAuditEvent(event: AuditEvent) {
  return {
    id: formatId('auditEvent', event.id),
    lane: event.lane,
    seq: Number(event.seq),
    occurredAt: event.occurredAt.toISOString(),
    actor: event.actor,
    action: event.action,
    entityId: event.entityId === null ? null : formatId('entity', event.entityId),
    resource: event.resourceType === null ? null : { type: event.resourceType, id: event.resourceId ?? '' },
    requestId: event.requestId,
    sourceAddress: event.sourceAddress,
    beforeDigest: hex(event.beforeDigest),
    afterDigest: hex(event.afterDigest),
    summary: event.summary,
    prevHash: event.prevHash.toString('hex'),
    hash: event.hash.toString('hex'),
  };
}

export function renderVerification(verification: AuditVerification) {
  const heads = verification.heads.map((head) => ({
    lane: head.lane,
    seq: Number(head.seq),
    hash: head.hash.toString('hex'),
  }));
  if (verification.ok) return { ok: true, eventsChecked: verification.eventsChecked, heads };
  const link = verification.brokenLink;
  return {
    ok: false,
    eventsChecked: verification.eventsChecked,
    heads,
    brokenLink: {
      lane: link.lane,
      seq: Number(link.seq),
      id: link.id === null ? null : formatId('auditEvent', link.id),
      problem: link.problem,
      detail: link.detail,
    },
  };
}

const csvHeader = [
  'lane',
  'seq',
  'id',
  'occurredAt',
  'actorKind',
  'actorId',
  'action',
  'entityId',
  'resourceType',
  'resourceId',
  'requestId',
  'sourceAddress',
  'beforeDigest',
  'afterDigest',
  'summary',
  'prevHash',
  'hash',
];

function csvRow(event: AuditEvent): CsvValue[] {
  const rendered = renderAuditEvent(event);
  return [
    rendered.lane,
    rendered.seq,
    rendered.id,
    rendered.occurredAt,
    rendered.actor.kind,
    rendered.actor.id,
    rendered.action,
    rendered.entityId,
    rendered.resource?.type ?? null,
    rendered.resource?.id ?? null,
    rendered.requestId,
    rendered.sourceAddress,
    rendered.beforeDigest,
    rendered.afterDigest,
    rendered.summary === null ? null : JSON.stringify(rendered.summary),
    rendered.prevHash,
    rendered.hash,
  ];
}

function filterOf(query: Static<typeof EventsQuery>): AuditEventFilter {
  const filter: AuditEventFilter = {};
  if (query.actor !== undefined) filter.actorId = query.actor;
  if (query.action?.endsWith('.*')) filter.actionPrefix = query.action.slice(0, -1);
  else if (query.action !== undefined) filter.action = query.action;
  if (query.entity !== undefined) {
    const entityId = parseId('entity', query.entity);
    if (entityId === null) throw new AppError('AUDIT_FILTER_INVALID', 'entity must be a client entity id (ent_…).');
    filter.entityId = entityId;
  }
  if (query.from !== undefined) filter.from = new Date(query.from);
  if (query.to !== undefined) filter.to = new Date(query.to);
  if (filter.from && filter.to && filter.from > filter.to) {
    throw new AppError('AUDIT_FILTER_INVALID', 'from must not be after to.');
  }
  return filter;
}

/** The cursor is opaque to clients: the last event's time and id, base64url-encoded. */
function decodeCursor(cursor: string | undefined): AuditPosition | null {
  if (cursor === undefined) return null;
  const match = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z) ([0-9a-f-]{36})$/.exec(
    Buffer.from(cursor, 'base64url').toString('utf8'),
  );
  const occurredAt = match ? new Date(match[1] ?? '') : null;
  if (!match || occurredAt === null || Number.isNaN(occurredAt.getTime()) || !uuidPattern.test(match[2] ?? '')) {
    throw new AppError('PAGINATION_CURSOR_INVALID');
  }
  return { occurredAt, id: match[2] ?? '' };
}

function encodeCursor(position: AuditPosition | null): string | null {
  return position === null
    ? null
    : Buffer.from(`${position.occurredAt.toISOString()} ${position.id}`).toString('base64url');
}

async function* exportLines(pages: AsyncGenerator<AuditEvent[]>, format: 'csv' | 'jsonl'): AsyncGenerator<string> {
  let first = true;
  for await (const page of pages) {
    if (format === 'jsonl') {
      yield page.map((event) => `${JSON.stringify(renderAuditEvent(event))}\n`).join('');
    } else {
      const csv = toCsv(csvHeader, page.map(csvRow));
      // toCsv always writes the header row; keep it for the first page only.
      yield first ? csv : csv.slice(csv.indexOf('\r\n') + 2);
    }
    first = false;
  }
  if (first && format === 'csv') yield toCsv(csvHeader, []);
}

/**
 * The firm's audit log: list with filters, export, and verify the hash chain. Who may call
 * them is the access table's `audit.read` (owner, partner, auditor); a bulk export is
 * `data.export`, which asks for a recent MFA step-up.
 */
export async function auditRoutes(app: App, options: { audit: AuditService }): Promise<void> {
  const { audit } = options;
  app.addSchema(AuditEventSchema);
  app.addHook('onRequest', app.authenticateTenant);

  app.get(
    '/v1/audit/events',
    {
      config: { routeClass: 'report', ...requirePermission('audit.read', { export: 'data.export' }) },
      schema: {
        summary: 'List or export audit events, in time order',
        tags: ['audit'],
        security: tenantSecurity,
        querystring: EventsQuery,
        response: {
          200: Type.Object({
            items: Type.Array(Type.Ref('AuditEvent')),
            nextCursor: Type.Union([Type.String(), Type.Null()]),
          }),
          ...problemResponses,
        },
      },
    },
    async (request, reply) => {
      const principal = requirePrincipal(request);
      const filter = filterOf(request.query);
      const format = request.query.format;
      if (format === 'csv' || format === 'jsonl') {
        const lines = exportLines(audit.export(principal.tenant, filter), format);
        return reply
          .type(format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8')
          .header('content-disposition', `attachment; filename="audit-events.${format}"`)
          .send(Readable.from(lines));
      }
      const page = await audit.list(principal.tenant, filter, decodeCursor(request.query.cursor), request.query.limit);
      return { items: page.items.map(renderAuditEvent), nextCursor: encodeCursor(page.nextAfter) };
    },
  );

  app.get(
    '/v1/audit/verify',
    {
      config: { routeClass: 'report', ...requirePermission('audit.read') },
      schema: {
        summary: "Verify the firm's audit hash chain; reports the first broken link",
        tags: ['audit'],
        security: tenantSecurity,
        response: { 200: VerificationSchema, ...problemResponses },
      },
    },
    async (request) => renderVerification(await audit.verify(requirePrincipal(request).tenant)),
  );
}

const PlatformEventsQuery = Type.Object(
  {
    action: EventsQuery.properties.action,
    limit: EventsQuery.properties.limit,
    cursor: EventsQuery.properties.cursor,
  },
  { additionalProperties: false },
);

/**
 * Operator routes: verify any tenant's chain (the CLI's `audit verify`), and read and verify
 * the platform's own log (platform-audit.ts: signing-key rotations).
 */
export async function auditAdminRoutes(
  app: App,
  options: { audit: AuditService; tenancy: TenancyService; platformAudit: PlatformAudit },
): Promise<void> {
  const { audit, tenancy, platformAudit } = options;
  app.addSchema(AuditEventSchema);
  app.addHook('onRequest', app.authenticateOperator);

  app.get(
    '/v1/admin/audit/events',
    {
      schema: {
        summary: "List the platform's own audit events (operator actions on the platform as a whole), in time order",
        tags: ['operator'],
        security: operatorSecurity,
        querystring: PlatformEventsQuery,
        response: {
          200: Type.Object({
            items: Type.Array(Type.Ref('AuditEvent')),
            nextCursor: Type.Union([Type.String(), Type.Null()]),
          }),
          ...problemResponses,
        },
      },
    },
    async (request) => {
      requireOperator(request);
      const { action, limit, cursor } = request.query;
      const filter: AuditEventFilter = {};
      if (action?.endsWith('.*')) filter.actionPrefix = action.slice(0, -1);
      else if (action !== undefined) filter.action = action;
      const page = await platformAudit.list(filter, decodeCursor(cursor), limit);
      return { items: page.items.map(renderAuditEvent), nextCursor: encodeCursor(page.nextAfter) };
    },
  );

  app.get(
    '/v1/admin/audit/verify',
    {
      schema: {
        summary: "Verify the platform's own audit hash chain",
        tags: ['operator'],
        security: operatorSecurity,
        response: { 200: VerificationSchema, ...problemResponses },
      },
    },
    async (request) => {
      requireOperator(request);
      return renderVerification(await platformAudit.verify());
    },
  );

  app.get(
    '/v1/admin/tenants/:tenantId/audit/verify',
    {
      schema: {
        summary: "Verify a tenant's audit hash chain",
        tags: ['operator'],
        security: operatorSecurity,
        params: Type.Object({ tenantId: Type.String({ maxLength: 100 }) }),
        response: { 200: VerificationSchema, ...problemResponses },
      },
    },
    async (request) => {
      requireOperator(request);
      const tenantId = parseId('tenant', request.params.tenantId);
      const record = tenantId === null ? null : await tenancy.getTenant(tenantId);
      if (record === null) throw new AppError('TENANT_NOT_FOUND');
      return renderVerification(await audit.verify(tenantContextOf(record)));
    },
  );
}
