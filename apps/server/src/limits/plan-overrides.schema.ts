import { Type } from 'typebox';
import { Value } from 'typebox/value';
import { limitsLimits } from './limits.limits.ts';
import type { PlanOverrides } from './limits.types.ts';

const bounded = (maximum: number) => Type.Optional(Type.Integer({ minimum: 1, maximum }));
const weight = bounded(limitsLimits.routeWeightMax);

/** The shape of `tenants.plan_overrides`: the operator API's body and what is read back. */
export const PlanOverridesSchema = Type.Object(
  {
    usagePlan: Type.Optional(
      Type.Object(
        {
          ratePerSecond: bounded(limitsLimits.ratePerSecondMax),
          burst: bounded(limitsLimits.burstMax),
          quota: Type.Optional(
            Type.Object(
              {
                limit: bounded(limitsLimits.quotaLimitMax),
                period: Type.Optional(Type.Union([Type.Literal('DAY'), Type.Literal('WEEK'), Type.Literal('MONTH')])),
                offsetDays: Type.Optional(Type.Integer({ minimum: 0, maximum: 27 })),
              },
              { additionalProperties: false },
            ),
          ),
          routeWeights: Type.Optional(
            Type.Object(
              { read: weight, write: weight, report: weight, batch: weight },
              { additionalProperties: false },
            ),
          ),
        },
        { additionalProperties: false },
      ),
    ),
    limits: Type.Optional(
      Type.Object(
        {
          statementTimeoutMs: bounded(limitsLimits.statementTimeoutMsMax),
          inFlightRequestsMax: bounded(limitsLimits.inFlightRequestsMaxUpper),
          databaseConnectionsMax: bounded(limitsLimits.databaseConnectionsMaxUpper),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

/** Checks stored overrides (the database holds any jsonb object); null when malformed. */
export function parseStoredOverrides(value: unknown): PlanOverrides | null {
  return Value.Check(PlanOverridesSchema, value) ? (value as PlanOverrides) : null;
}
