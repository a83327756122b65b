import { Type } from 'typebox';

/** Shared schemas for every route: problem responses and pagination. */
export const ProblemSchema = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    code: Type.String({ description: 'Stable error code; see docs/errors.md.' }),
    detail: Type.Optional(Type.String()),
    instance: Type.String(),
    requestId: Type.String(),
  },
  { $id: 'Problem', additionalProperties: true, description: 'RFC 9457 problem details.' },
);

export const problemResponses = {
  '4xx': Type.Ref('Problem'),
  '5xx': Type.Ref('Problem'),
} as const;

export const tenantSecurity = [{ bearerAuth: [] }];
export const operatorSecurity = [{ operatorKey: [] }];

export const IdempotencyHeaders = Type.Object(
  {
    'idempotency-key': Type.Optional(
      Type.String({ minLength: 1, maxLength: 255, description: 'Makes a retried POST return the first result.' }),
    ),
  },
  { additionalProperties: true },
);
