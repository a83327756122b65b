import { Type } from 'typebox';
import { requireOperator } from '../identity/auth.plugin.ts';
import { AppError } from '../platform/errors.ts';
import type { App } from '../platform/http/http-types.ts';
import { operatorSecurity, problemResponses } from '../platform/http/schemas.ts';
import { formatId, idPattern, parseId } from '../platform/ids.ts';
import type { OperatorsService } from './operators.service.ts';
import type { Operator } from './operators.types.ts';

const OperatorSchema = Type.Object({
  id: Type.String({ pattern: idPattern('operator') }),
  name: Type.String(),
  keyPrefix: Type.String(),
  createdBy: Type.String(),
  createdAt: Type.String({ format: 'date-time' }),
  revokedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
});

function renderOperator(operator: Operator) {
  return {
    id: formatId('operator', operator.id),
    name: operator.name,
    keyPrefix: operator.keyPrefix,
    createdBy: operator.createdBy,
    createdAt: operator.createdAt.toISOString(),
    revokedAt: operator.revokedAt?.toISOString() ?? null,
  };
}

/** Named operators: created and revoked with the bootstrap key, listed by any operator. */
export async function operatorsRoutes(app: App, options: { operators: OperatorsService }): Promise<void> {
  const { operators } = options;
  app.addHook('onRequest', app.authenticateOperator);

  app.post(
    '/v1/admin/operators',
    {
      schema: {
        summary: 'Create a named operator (bootstrap operator only); the key is shown once',
        tags: ['operator'],
        security: operatorSecurity,
        body: Type.Object(
          { name: Type.String({ minLength: 1, maxLength: 100, pattern: '\\S' }) },
          { additionalProperties: false },
        ),
        response: {
          201: Type.Object({ operator: OperatorSchema, key: Type.String() }),
          ...problemResponses,
        },
      },
    },
    async (request, reply) => {
      const created = await operators.create(request.body.name, requireOperator(request));
      return reply.code(201).send({ operator: renderOperator(created.operator), key: created.key });
    },
  );

  app.get(
    '/v1/admin/operators',
    {
      schema: {
        summary: 'List named operators',
        tags: ['operator'],
        security: operatorSecurity,
        response: { 200: Type.Object({ items: Type.Array(OperatorSchema) }), ...problemResponses },
      },
    },
    async () => ({ items: (await operators.list()).map(renderOperator) }),
  );

  app.post(
    '/v1/admin/operators/:operatorId/revoke',
    {
      schema: {
        summary: "Revoke a named operator's key (bootstrap operator only)",
        tags: ['operator'],
        security: operatorSecurity,
        params: Type.Object({ operatorId: Type.String({ maxLength: 100 }) }),
        response: { 200: OperatorSchema, ...problemResponses },
      },
    },
    async (request) => {
      const id = parseId('operator', request.params.operatorId);
      if (id === null) throw new AppError('OPERATOR_NOT_FOUND');
      return renderOperator(await operators.revoke(id, requireOperator(request)));
    },
  );
}
