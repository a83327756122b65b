import { Type } from 'typebox';
import { identityLimits } from '../../identity/identity.limits.ts';
import { idPattern } from '../../platform/ids.ts';
import { regulatoryTiers } from '../tenancy.types.ts';

export const TenantSchema = Type.Object(
  {
    id: Type.String({ pattern: idPattern('tenant') }),
    name: Type.String(),
    tier: Type.String(),
    regulatoryTier: Type.Union(regulatoryTiers.map((name) => Type.Literal(name))),
    status: Type.Union([
      Type.Literal('provisioning'),
      Type.Literal('active'),
      Type.Literal('suspended'),
      Type.Literal('offboarded'),
    ]),
    placement: Type.Object({
      model: Type.Union([Type.Literal('pool'), Type.Literal('bridge'), Type.Literal('silo')]),
      cluster: Type.String(),
      database: Type.String(),
    }),
    createdAt: Type.String({ format: 'date-time' }),
    updatedAt: Type.String({ format: 'date-time' }),
  },
  { $id: 'Tenant' },
);

export const CreateTenantBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200, pattern: '\\S' }),
    tier: Type.String({ minLength: 1, maxLength: 64 }),
    regulatoryTier: Type.Optional(Type.Union(regulatoryTiers.map((name) => Type.Literal(name)))),
    admin: Type.Object(
      {
        email: Type.String({ format: 'email', maxLength: identityLimits.emailLengthMax }),
        password: Type.String({ minLength: 1, maxLength: identityLimits.passwordLengthMax }),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);
