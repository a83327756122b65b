import type { TierDefinition } from '../../tenancy/tiers.ts';

/** A valid tier with the smallest plan and limits, for billing tests that care only about prices. */
export function tierPricedAt(prices: TierDefinition['prices']): TierDefinition {
  return {
    description: 'test',
    isolation: 'pool',
    usagePlan: {
      ratePerSecond: 1,
      burst: 1,
      quota: { limit: 1, period: 'MONTH', offsetDays: 0 },
      routeWeights: { read: 1 },
    },
    limits: {
      jobConcurrency: 1,
      statementTimeoutMs: 1,
      storageBytesMax: 1,
      inFlightRequestsMax: 1,
      databaseConnectionsMax: 1,
    },
    dataRetentionDays: 1,
    regulatoryTiers: ['standard'],
    prices,
  };
}
