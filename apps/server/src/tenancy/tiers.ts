import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import { type Static, Type } from 'typebox';
import type { TenantPlacement } from '../platform/database/tenant-scope.ts';

/**
 * The tier catalogue: data, not code (ARCHITECTURE.md 3). A checked-in default
 * (`apps/server/config/tiers.json`) that the operator may replace with
 * `COUNTINGHOUSE_TIERS_FILE`; validated at start so a bad file stops the server with a
 * message naming the field.
 */
const Positive = (description: string) => Type.Integer({ minimum: 1, description });

const PriceTier = Type.Object(
  {
    upTo: Type.Union([Type.Integer({ minimum: 1 }), Type.Null()], {
      description: 'Upper bound of this band; null = no bound.',
    }),
    unitPriceMicros: Type.Integer({ minimum: 0, description: 'Price per unit in millionths of the currency unit.' }),
  },
  { additionalProperties: false },
);

const TierSchema = Type.Object(
  {
    description: Type.String(),
    isolation: Type.Union([Type.Literal('pool'), Type.Literal('bridge'), Type.Literal('silo')]),
    usagePlan: Type.Object(
      {
        ratePerSecond: Positive('Steady request rate (token-bucket refill per second).'),
        burst: Positive('Token-bucket capacity.'),
        quota: Type.Object(
          {
            limit: Positive('Requests (weighted) per period.'),
            period: Type.Union([Type.Literal('DAY'), Type.Literal('WEEK'), Type.Literal('MONTH')]),
            offsetDays: Type.Integer({ minimum: 0, maximum: 27 }),
          },
          { additionalProperties: false },
        ),
        routeWeights: Type.Record(Type.String({ pattern: '^[a-z]+$' }), Type.Integer({ minimum: 1, maximum: 100 })),
      },
      { additionalProperties: false },
    ),
    limits: Type.Object(
      {
        jobConcurrency: Positive('Jobs of this tenant running at once.'),
        jobWeight: Type.Optional(
          Positive('Share of job starts against other tenants when workers are busy; jobConcurrency when absent.'),
        ),
        statementTimeoutMs: Positive('PostgreSQL statement_timeout inside the tenant scope.'),
        storageBytesMax: Positive('Storage the tenant may use.'),
        inFlightRequestsMax: Positive('Requests of this tenant in flight at once (bulkhead).'),
        databaseConnectionsMax: Positive('Shared-pool connections this tenant may hold at once.'),
      },
      { additionalProperties: false },
    ),
    dataRetentionDays: Positive('Days data is kept after offboarding before purge.'),
    regulatoryTiers: Type.Array(
      Type.Union([Type.Literal('standard'), Type.Literal('irs-authorized'), Type.Literal('sec-registered')]),
      {
        minItems: 1,
        uniqueItems: true,
      },
    ),
    mfaRequired: Type.Optional(
      Type.Boolean({ description: 'Every user of a firm on this tier must use a second factor.' }),
    ),
    prices: Type.Object(
      {
        currency: Type.String({ pattern: '^[A-Z]{3}$' }),
        baseFeeMinor: Type.Integer({ minimum: 0 }),
        metrics: Type.Record(
          Type.String({ pattern: '^[a-z_]+$' }),
          Type.Object(
            { included: Type.Integer({ minimum: 0 }), tiers: Type.Array(PriceTier, { minItems: 1 }) },
            { additionalProperties: false },
          ),
        ),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

const CatalogueSchema = Type.Object(
  {
    $comment: Type.Optional(Type.String()),
    tiers: Type.Record(Type.String({ pattern: '^[a-z][a-z0-9-]{0,31}$' }), TierSchema),
  },
  { additionalProperties: false },
);

export type TierDefinition = Static<typeof TierSchema>;
export interface Tier extends TierDefinition {
  name: string;
}

export class TierCatalogueError extends Error {
  override name = 'TierCatalogueError';
}

export const defaultTiersFile = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../config/tiers.json');

/** Checks relations the schema cannot express; returns the problems found. */
function crossCheck(name: string, tier: TierDefinition): string[] {
  const problems: string[] = [];
  if (tier.usagePlan.burst < tier.usagePlan.ratePerSecond)
    problems.push(`${name}.usagePlan.burst must be at least ratePerSecond`);
  for (const [metric, price] of Object.entries(tier.prices.metrics)) {
    const bands = price.tiers;
    bands.forEach((band, index) => {
      const isLast = index === bands.length - 1;
      if (isLast !== (band.upTo === null))
        problems.push(`${name}.prices.metrics.${metric}: only the last band has upTo null`);
      const previous = bands[index - 1];
      if (previous?.upTo != null && band.upTo !== null && band.upTo <= previous.upTo) {
        problems.push(`${name}.prices.metrics.${metric}: bands must rise`);
      }
    });
  }
  return problems;
}

export class TierCatalogue {
  readonly #tiers: ReadonlyMap<string, Tier>;

  constructor(tiers: Record<string, TierDefinition>) {
    this.#tiers = new Map(Object.entries(tiers).map(([name, tier]) => [name, { ...tier, name }]));
  }

  /** Parses and validates a catalogue document; throws TierCatalogueError naming every problem. */
  static parse(document: unknown, source: string): TierCatalogue {
    const validate = new Ajv({ allErrors: true, strict: false }).compile(CatalogueSchema);
    if (!validate(document)) {
      const problems = (validate.errors ?? []).map(
        (error) => `${error.instancePath || '/'} ${error.message ?? 'is invalid'}`,
      );
      throw new TierCatalogueError(`invalid tier catalogue ${source}:\n  ${problems.join('\n  ')}`);
    }
    const tiers = (document as Static<typeof CatalogueSchema>).tiers;
    const problems = Object.entries(tiers).flatMap(([name, tier]) => crossCheck(name, tier));
    if (Object.keys(tiers).length === 0) problems.push('at least one tier is required');
    if (problems.length > 0)
      throw new TierCatalogueError(`invalid tier catalogue ${source}:\n  ${problems.join('\n  ')}`);
    return new TierCatalogue(tiers);
  }

  static load(file: string = defaultTiersFile): TierCatalogue {
    let document: unknown;
    try {
      document = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (error) {
      throw new TierCatalogueError(`cannot read tier catalogue ${file}: ${(error as Error).message}`);
    }
    return TierCatalogue.parse(document, file);
  }

  find(name: string): Tier | undefined {
    return this.#tiers.get(name);
  }

  list(): Tier[] {
    return [...this.#tiers.values()];
  }
}

/** The shared cluster and database that pooled tenants live in. */
export const sharedPoolPlacement: TenantPlacement = { model: 'pool', cluster: 'shared', database: 'shared' };
