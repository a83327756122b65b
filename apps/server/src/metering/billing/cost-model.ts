import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import { type Static, Type } from 'typebox';

/**
 * The cost model: what the platform pays for, as data (`apps/server/config/costs.json`,
 * replaced by COUNTINGHOUSE_COSTS_FILE), validated at start like the tier catalogue.
 */
export const costDrivers = ['compute_us', 'database_us', 'requests', 'storage_byte_days'] as const;
export type CostDriver = (typeof costDrivers)[number];

const Driver = Type.Union(costDrivers.map((driver) => Type.Literal(driver)));
const Placement = Type.Union([Type.Literal('pool'), Type.Literal('bridge'), Type.Literal('silo')]);
const Minor = Type.Integer({ minimum: 0 });

const CostModelSchema = Type.Object(
  {
    $comment: Type.Optional(Type.String()),
    currency: Type.String({ pattern: '^[A-Z]{3}$' }),
    unitCosts: Type.Object(
      {
        computeSecondMicros: Minor,
        databaseSecondMicros: Minor,
        storageGbMonthMicros: Minor,
        requestMicros: Minor,
      },
      { additionalProperties: false },
    ),
    sharedFixedMonthly: Type.Array(
      Type.Object(
        {
          name: Type.String({ pattern: '^[a-z][a-z0-9-]{0,62}$' }),
          amountMinor: Minor,
          driver: Driver,
          placements: Type.Array(Placement, { minItems: 1, uniqueItems: true }),
        },
        { additionalProperties: false },
      ),
      { maxItems: 100 },
    ),
    dedicatedMonthly: Type.Object(
      { bridgeDatabaseMinor: Minor, siloDatabaseMinor: Minor, siloClusterMinor: Minor },
      { additionalProperties: false },
    ),
    curProductDrivers: Type.Record(Type.String({ pattern: '^[A-Za-z0-9]{1,64}$' }), Driver),
    curDefaultDriver: Driver,
  },
  { additionalProperties: false },
);

export type CostModel = Static<typeof CostModelSchema>;

export class CostModelError extends Error {
  override name = 'CostModelError';
}

export const defaultCostsFile = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../../config/costs.json');

export function parseCostModel(document: unknown, source: string): CostModel {
  const validate = new Ajv({ allErrors: true, strict: false }).compile(CostModelSchema);
  if (!validate(document)) {
    const problems = (validate.errors ?? []).map((error) => `${error.instancePath || '/'} ${error.message ?? ''}`);
    throw new CostModelError(`invalid cost model ${source}:\n  ${problems.join('\n  ')}`);
  }
  const model = document as CostModel;
  const names = model.sharedFixedMonthly.map((pool) => pool.name);
  if (new Set(names).size !== names.length) throw new CostModelError(`invalid cost model ${source}: pool names repeat`);
  return model;
}

export function loadCostModel(file: string = defaultCostsFile): CostModel {
  let document: unknown;
  try {
    document = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (error) {
    throw new CostModelError(`cannot read cost model ${file}: ${(error as Error).message}`);
  }
  return parseCostModel(document, file);
}

/** ISO 4217 minor-unit exponents of the currencies prices and costs may use. */
const currencyExponents: Record<string, number> = {
  USD: 2,
  EUR: 2,
  GBP: 2,
  CAD: 2,
  AUD: 2,
  CHF: 2,
  NZD: 2,
  SGD: 2,
  SEK: 2,
  NOK: 2,
  DKK: 2,
  INR: 2,
  JPY: 0,
  KRW: 0,
};

export function currencyExponent(currency: string): number {
  const exponent = currencyExponents[currency];
  if (exponent === undefined) throw new CostModelError(`currency ${currency} is not supported`);
  return exponent;
}
