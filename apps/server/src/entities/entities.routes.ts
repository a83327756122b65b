import { Type } from 'typebox';
import { requirePermission } from '../identity/access.ts';
import { requirePrincipal } from '../identity/auth.plugin.ts';
import { AppError } from '../platform/errors.ts';
import type { App } from '../platform/http/http-types.ts';
import { sendIdempotent } from '../platform/http/idempotent-reply.ts';
import { IdempotencyHeaders, problemResponses, tenantSecurity } from '../platform/http/schemas.ts';
import { formatId, idPattern, parseId } from '../platform/ids.ts';
import { entityLimits } from './entities.limits.ts';
import type { EntitiesService } from './entities.service.ts';
import { type Entity, entityTypes } from './entities.types.ts';

const EntityTypeSchema = Type.Union(entityTypes.map((type) => Type.Literal(type)));

const EntitySchema = Type.Object(
  {
    id: Type.String({ pattern: idPattern('entity') }),
    name: Type.String(),
    legalName: Type.Union([Type.String(), Type.Null()]),
    taxpayerId: Type.Union([Type.String({ description: 'Masked: only the last four digits are shown.' }), Type.Null()]),
    entityType: Type.Union([EntityTypeSchema, Type.Null()]),
    baseCurrency: Type.String({ description: 'ISO 4217 code.' }),
    fiscalYearEnd: Type.String({ description: 'Month and day, MM-DD.' }),
    status: Type.Union([Type.Literal('active'), Type.Literal('archived')]),
    createdBy: Type.String({ pattern: idPattern('user') }),
    createdAt: Type.String({ format: 'date-time' }),
    updatedAt: Type.String({ format: 'date-time' }),
  },
  { $id: 'Entity' },
);

const TaxpayerIdSchema = Type.String({
  pattern: '^([0-9]{2}-?[0-9]{7}|[0-9]{3}-?[0-9]{2}-?[0-9]{4})$',
  description: 'EIN (12-3456789) or SSN/ITIN (123-45-6789); stored encrypted, returned masked.',
});

const CreateEntityBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: entityLimits.nameLengthMax, pattern: '\\S' }),
    legalName: Type.Optional(Type.String({ minLength: 1, maxLength: entityLimits.nameLengthMax, pattern: '\\S' })),
    taxpayerId: Type.Optional(TaxpayerIdSchema),
    chartTemplate: Type.Optional(
      Type.String({ maxLength: 100, description: 'e.g. us-small-business; empty chart when absent.' }),
    ),
    entityType: Type.Optional(EntityTypeSchema),
    baseCurrency: Type.Optional(Type.String({ pattern: '^[A-Z]{3}$' })),
    fiscalYearEnd: Type.Optional(Type.String({ pattern: '^(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$' })),
  },
  { additionalProperties: false },
);

const UpdateEntityBody = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1, maxLength: entityLimits.nameLengthMax, pattern: '\\S' })),
    legalName: Type.Optional(
      Type.Union([Type.String({ minLength: 1, maxLength: entityLimits.nameLengthMax, pattern: '\\S' }), Type.Null()]),
    ),
    taxpayerId: Type.Optional(Type.Union([TaxpayerIdSchema, Type.Null()])),
    status: Type.Optional(Type.Union([Type.Literal('active'), Type.Literal('archived')])),
  },
  { additionalProperties: false, minProperties: 1 },
);

const ListQuery = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, maximum: entityLimits.pageSizeMax, default: entityLimits.pageSizeDefault }),
    cursor: Type.Optional(Type.String({ maxLength: 100 })),
  },
  { additionalProperties: false },
);

const EntityPageSchema = Type.Object({
  items: Type.Array(Type.Ref('Entity')),
  nextCursor: Type.Union([Type.String(), Type.Null()]),
});

export function renderEntity(entity: Entity) {
  return {
    id: formatId('entity', entity.id),
    name: entity.name,
    legalName: entity.legalName,
    taxpayerId: entity.taxpayerIdLast4 === null ? null : `*****${entity.taxpayerIdLast4}`,
    entityType: entity.entityType,
    baseCurrency: entity.baseCurrency,
    fiscalYearEnd: entity.fiscalYearEnd,
    status: entity.status,
    createdBy: formatId('user', entity.createdBy),
    createdAt: entity.createdAt.toISOString(),
    updatedAt: entity.updatedAt.toISOString(),
  };
}

/** The cursor is opaque to clients: the last id of the page, base64url-encoded. */
function decodeCursor(cursor: string | undefined): string | null {
  if (cursor === undefined) return null;
  const id = parseId('entity', Buffer.from(cursor, 'base64url').toString('utf8'));
  if (id === null) throw new AppError('PAGINATION_CURSOR_INVALID');
  return id;
}

function encodeCursor(id: string | null): string | null {
  return id === null ? null : Buffer.from(formatId('entity', id)).toString('base64url');
}

/** Client entities: the first tenant resource, end to end. */
export async function entitiesRoutes(app: App, options: { entities: EntitiesService }): Promise<void> {
  const { entities } = options;
  app.addSchema(EntitySchema);
  app.addHook('onRequest', app.authenticateTenant);

  app.post(
    '/v1/entities',
    {
      config: { routeClass: 'write', ...requirePermission('entities.create') },
      schema: {
        summary: 'Create a client entity',
        tags: ['entities'],
        security: tenantSecurity,
        headers: IdempotencyHeaders,
        body: CreateEntityBody,
        response: { 201: Type.Ref('Entity'), ...problemResponses },
      },
    },
    async (request, reply) => {
      const principal = requirePrincipal(request);
      const result = await entities.create(
        principal.tenant,
        principal.userId,
        request.body,
        request.headers['idempotency-key'],
        renderEntity,
      );
      return sendIdempotent(reply, result, (body) => `/v1/entities/${body.id}`);
    },
  );

  app.get(
    '/v1/entities',
    {
      config: { routeClass: 'read', ...requirePermission('entities.read') },
      schema: {
        summary: 'List client entities, oldest first, a page at a time',
        tags: ['entities'],
        security: tenantSecurity,
        querystring: ListQuery,
        response: { 200: EntityPageSchema, ...problemResponses },
      },
    },
    async (request) => {
      const principal = requirePrincipal(request);
      const page = await entities.list(principal.tenant, decodeCursor(request.query.cursor), request.query.limit);
      return { items: page.items.map(renderEntity), nextCursor: encodeCursor(page.nextAfterId) };
    },
  );

  app.get(
    '/v1/entities/:entityId',
    {
      config: { routeClass: 'read', ...requirePermission('entities.read') },
      schema: {
        summary: 'Read one client entity',
        tags: ['entities'],
        security: tenantSecurity,
        params: Type.Object({ entityId: Type.String({ maxLength: 100 }) }),
        response: { 200: Type.Ref('Entity'), ...problemResponses },
      },
    },
    async (request) => {
      const principal = requirePrincipal(request);
      const id = parseId('entity', request.params.entityId);
      if (id === null) throw new AppError('ENTITY_NOT_FOUND');
      return renderEntity(await entities.get(principal.tenant, id));
    },
  );

  app.patch(
    '/v1/entities/:entityId',
    {
      config: { ...requirePermission('entities.update') },
      schema: {
        summary: 'Change a client entity: name, legal name, taxpayer id, status',
        tags: ['entities'],
        security: tenantSecurity,
        params: Type.Object({ entityId: Type.String({ maxLength: 100 }) }),
        body: UpdateEntityBody,
        response: { 200: Type.Ref('Entity'), ...problemResponses },
      },
    },
    async (request) => {
      const principal = requirePrincipal(request);
      const id = parseId('entity', request.params.entityId);
      if (id === null) throw new AppError('ENTITY_NOT_FOUND');
      return renderEntity(await entities.update(principal.tenant, id, request.body));
    },
  );
}
