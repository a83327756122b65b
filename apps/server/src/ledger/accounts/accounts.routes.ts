import { Type } from 'typebox';
import { requirePermission } from '../../identity/access.ts';
import { requirePrincipal } from '../../identity/auth.plugin.ts';
import type { App } from '../../platform/http/http-types.ts';
import { sendIdempotent } from '../../platform/http/idempotent-reply.ts';
import { IdempotencyHeaders, problemResponses, tenantSecurity } from '../../platform/http/schemas.ts';
import { decodeCursor, EntityParams, encodeCursor, pathId, renderAccount, TaxLinesSchema } from '../ledger.http.ts';
import { ledgerLimits } from '../ledger.limits.ts';
import { accountTypes } from '../ledger.types.ts';
import type { AccountsService } from './accounts.service.ts';

const AccountParams = Type.Object({
  entityId: Type.String({ maxLength: 100 }),
  accountId: Type.String({ maxLength: 100 }),
});

const CreateAccountBody = Type.Object(
  {
    number: Type.String({ pattern: '^[0-9A-Za-z][0-9A-Za-z.-]{0,19}$' }),
    name: Type.String({ minLength: 1, maxLength: 200, pattern: '\\S' }),
    type: Type.Union(accountTypes.map((type) => Type.Literal(type))),
    normalBalance: Type.Optional(Type.Union([Type.Literal('debit'), Type.Literal('credit')])),
    parentId: Type.Optional(Type.Union([Type.String({ maxLength: 100 }), Type.Null()])),
    systemRole: Type.Optional(Type.Union([Type.Literal('retained_earnings'), Type.Literal('rounding')])),
    taxLines: Type.Optional(TaxLinesSchema),
    balanceShards: Type.Optional(Type.Integer({ minimum: 1, maximum: ledgerLimits.balanceShardsMax })),
  },
  { additionalProperties: false },
);

const UpdateAccountBody = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 200, pattern: '\\S' })),
    active: Type.Optional(Type.Boolean()),
    parentId: Type.Optional(Type.Union([Type.String({ maxLength: 100 }), Type.Null()])),
    taxLines: Type.Optional(TaxLinesSchema),
    balanceShards: Type.Optional(Type.Integer({ minimum: 1, maximum: ledgerLimits.balanceShardsMax })),
  },
  { additionalProperties: false, minProperties: 1 },
);

const ListQuery = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, maximum: ledgerLimits.pageSizeMax, default: ledgerLimits.pageSizeMax }),
    cursor: Type.Optional(Type.String({ maxLength: 200 })),
  },
  { additionalProperties: false },
);

const TemplateBody = Type.Object({ template: Type.String({ maxLength: 100 }) }, { additionalProperties: false });

/** A parent given as a public id; a malformed one is simply not an account of this entity. */
function parentUuid(value: string | null | undefined): string | null | undefined {
  if (value === undefined || value === null) return value;
  return pathId('account', value, 'ACCOUNT_NOT_FOUND');
}

export async function accountsRoutes(app: App, options: { accounts: AccountsService }): Promise<void> {
  const { accounts } = options;

  app.get(
    '/v1/chart-templates',
    {
      config: { ...requirePermission('ledger.templates.read') },
      schema: {
        summary: 'List chart-of-accounts templates with their tax-line mappings',
        tags: ['accounts'],
        security: tenantSecurity,
        response: { 200: Type.Object({ items: Type.Array(Type.Unknown()) }), ...problemResponses },
      },
    },
    async () => ({ items: accounts.templates() }),
  );

  app.get(
    '/v1/entities/:entityId/accounts',
    {
      config: { ...requirePermission('ledger.accounts.read') },
      schema: {
        summary: "List an entity's chart of accounts by number",
        tags: ['accounts'],
        security: tenantSecurity,
        params: EntityParams,
        querystring: ListQuery,
        response: {
          200: Type.Object({
            items: Type.Array(Type.Ref('Account')),
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
        typeof value.number === 'string' ? value.number : null,
      );
      const page = await accounts.list(principal.tenant, entityId, after, request.query.limit);
      return {
        items: page.items.map(renderAccount),
        nextCursor: encodeCursor(page.nextAfterNumber === null ? null : { number: page.nextAfterNumber }),
      };
    },
  );

  app.post(
    '/v1/entities/:entityId/accounts',
    {
      config: { ...requirePermission('ledger.accounts.write') },
      schema: {
        summary: 'Add an account to the chart',
        tags: ['accounts'],
        security: tenantSecurity,
        params: EntityParams,
        headers: IdempotencyHeaders,
        body: CreateAccountBody,
        response: { 201: Type.Ref('Account'), ...problemResponses },
      },
    },
    async (request, reply) => {
      const principal = requirePrincipal(request);
      const entityId = pathId('entity', request.params.entityId, 'ENTITY_NOT_FOUND');
      const body = request.body;
      const result = await accounts.create(
        principal.tenant,
        entityId,
        { ...body, parentId: parentUuid(body.parentId) },
        request.headers['idempotency-key'],
        renderAccount,
      );
      return sendIdempotent(reply, result, (body) => `/v1/entities/${request.params.entityId}/accounts/${body.id}`);
    },
  );

  app.post(
    '/v1/entities/:entityId/accounts/from-template',
    {
      config: { ...requirePermission('ledger.accounts.write') },
      schema: {
        summary: "Create an empty entity's chart from a template",
        tags: ['accounts'],
        security: tenantSecurity,
        params: EntityParams,
        headers: IdempotencyHeaders,
        body: TemplateBody,
        response: { 201: Type.Object({ items: Type.Array(Type.Ref('Account')) }), ...problemResponses },
      },
    },
    async (request, reply) => {
      const principal = requirePrincipal(request);
      const entityId = pathId('entity', request.params.entityId, 'ENTITY_NOT_FOUND');
      const result = await accounts.applyTemplate(
        principal.tenant,
        entityId,
        request.body.template,
        request.headers['idempotency-key'],
        (created) => ({ items: created.map(renderAccount) }),
      );
      return sendIdempotent(reply, result);
    },
  );

  app.get(
    '/v1/entities/:entityId/accounts/:accountId',
    {
      config: { ...requirePermission('ledger.accounts.read') },
      schema: {
        summary: 'Read one account',
        tags: ['accounts'],
        security: tenantSecurity,
        params: AccountParams,
        response: { 200: Type.Ref('Account'), ...problemResponses },
      },
    },
    async (request) => {
      const principal = requirePrincipal(request);
      const entityId = pathId('entity', request.params.entityId, 'ENTITY_NOT_FOUND');
      const accountId = pathId('account', request.params.accountId, 'ACCOUNT_NOT_FOUND');
      return renderAccount(await accounts.get(principal.tenant, entityId, accountId));
    },
  );

  app.patch(
    '/v1/entities/:entityId/accounts/:accountId',
    {
      config: { ...requirePermission('ledger.accounts.write') },
      schema: {
        summary: 'Rename, deactivate, move or re-shard an account',
        tags: ['accounts'],
        security: tenantSecurity,
        params: AccountParams,
        body: UpdateAccountBody,
        response: { 200: Type.Ref('Account'), ...problemResponses },
      },
    },
    async (request) => {
      const principal = requirePrincipal(request);
      const entityId = pathId('entity', request.params.entityId, 'ENTITY_NOT_FOUND');
      const accountId = pathId('account', request.params.accountId, 'ACCOUNT_NOT_FOUND');
      const body = request.body;
      return renderAccount(
        await accounts.update(principal.tenant, entityId, accountId, { ...body, parentId: parentUuid(body.parentId) }),
      );
    },
  );
}
