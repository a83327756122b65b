import { Type } from 'typebox';
import { identityLimits } from '../../identity/identity.limits.ts';
import { PlanOverridesSchema } from '../../limits/plan-overrides.schema.ts';
import { idPattern } from '../../platform/ids.ts';
import { provisioningSteps } from '../provisioning/provisioning.types.ts';
import { tenancyLimits } from '../tenancy.limits.ts';
import { regulatoryTiers } from '../tenancy.types.ts';

const TenantStatusSchema = Type.Union([
  Type.Literal('provisioning'),
  Type.Literal('active'),
  Type.Literal('suspended'),
  Type.Literal('offboarded'),
]);

const PlacementSchema = Type.Object({
  model: Type.Union([Type.Literal('pool'), Type.Literal('bridge'), Type.Literal('silo')]),
  cluster: Type.String(),
  database: Type.String(),
});

const StepNameSchema = Type.String({ enum: [...provisioningSteps] });

const PlannedStepSchema = Type.Object({
  position: Type.Integer({ minimum: 1 }),
  step: StepNameSchema,
  action: Type.String(),
});

const StepLogSchema = Type.Object({
  position: Type.Integer({ minimum: 1 }),
  step: StepNameSchema,
  action: Type.String(),
  status: Type.Union([Type.Literal('pending'), Type.Literal('done'), Type.Literal('failed')]),
  attempts: Type.Integer({ minimum: 0 }),
  outcome: Type.Union([Type.String(), Type.Null()]),
  error: Type.Union([Type.String(), Type.Null()]),
  startedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  finishedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  durationMs: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()]),
});

/** A tenant as the registry lists it. */
export const TenantSummarySchema = Type.Object({
  id: Type.String({ pattern: idPattern('tenant') }),
  name: Type.String(),
  tier: Type.String(),
  regulatoryTier: Type.Union(regulatoryTiers.map((name) => Type.Literal(name))),
  status: TenantStatusSchema,
  statusReason: Type.Union([Type.String(), Type.Null()]),
  placement: PlacementSchema,
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
});

/** One tenant with its provisioning step log (`steps` is empty for tenants onboarded before plans existed). */
export const TenantSchema = Type.Object(
  {
    ...TenantSummarySchema.properties,
    provisioning: Type.Object({ steps: Type.Array(StepLogSchema) }),
  },
  { $id: 'Tenant' },
);

export const TenantPageSchema = Type.Object({
  items: Type.Array(TenantSummarySchema),
  nextCursor: Type.Union([Type.String(), Type.Null()]),
});

export const TenantPlanSchema = Type.Object({
  dryRun: Type.Literal(true),
  tenant: Type.Object({
    id: Type.String({ pattern: idPattern('tenant'), description: 'The id the tenant would get (not reserved).' }),
    name: Type.String(),
    tier: Type.String(),
    placement: PlacementSchema,
  }),
  steps: Type.Array(PlannedStepSchema),
});

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
    plan: Type.Optional(PlanOverridesSchema),
  },
  { additionalProperties: false },
);

export const CreateTenantQuery = Type.Object(
  {
    dryRun: Type.Optional(
      Type.Boolean({ description: 'Validate and return the provisioning plan without applying it (200).' }),
    ),
  },
  { additionalProperties: false },
);

export const ListTenantsQuery = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, maximum: tenancyLimits.listPageMax, default: tenancyLimits.listPageDefault }),
    cursor: Type.Optional(Type.String({ maxLength: 100 })),
    status: Type.Optional(TenantStatusSchema),
    tier: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  },
  { additionalProperties: false },
);

export const SuspendBody = Type.Object(
  { reason: Type.Optional(Type.String({ minLength: 1, maxLength: tenancyLimits.statusReasonLengthMax })) },
  { additionalProperties: false },
);

export const TenantParams = Type.Object({ tenantId: Type.String({ pattern: idPattern('tenant') }) });

export const HotTenantsQuery = Type.Object(
  {
    hours: Type.Integer({
      minimum: 1,
      maximum: tenancyLimits.hotWindowHoursMax,
      default: tenancyLimits.hotWindowHoursDefault,
      description: 'Window ending at the next full hour.',
    }),
    sharePercent: Type.Integer({
      minimum: 1,
      maximum: 100,
      default: tenancyLimits.hotSharePercentDefault,
      description: "Flag a tenant whose share of its cluster's database time or requests reaches this.",
    }),
  },
  { additionalProperties: false },
);

export const HotTenantReportSchema = Type.Object({
  from: Type.String({ format: 'date-time' }),
  to: Type.String({ format: 'date-time' }),
  sharePercent: Type.Integer(),
  tenants: Type.Array(
    Type.Object({
      tenantId: Type.String({ pattern: idPattern('tenant') }),
      name: Type.String(),
      tier: Type.String(),
      placement: PlacementSchema,
      databaseUs: Type.String({ description: 'Microseconds of database time in the window (integer as text).' }),
      requests: Type.String({ description: 'Requests in the window (integer as text).' }),
      databaseSharePercent: Type.Number(),
      requestSharePercent: Type.Number(),
      tenantsOnCluster: Type.Integer(),
      suggestedIsolation: Type.Union([Type.Literal('bridge'), Type.Literal('silo')]),
      suggestedTier: Type.Union([Type.String(), Type.Null()]),
    }),
  ),
});
