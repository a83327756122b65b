import type { TenantDb } from '../../platform/database/tenant-scope.ts';
import { normalizeRate } from '../money.ts';

/** Exchange rates in PostgreSQL: one row per entity, currency and date; a later record replaces the rate. */
export interface ExchangeRate {
  currency: string;
  date: string;
  rate: string;
  source: 'manual' | 'import';
  recordedAt: Date;
}

export async function upsertRates(
  db: TenantDb,
  entityId: string,
  recordedBy: string,
  source: ExchangeRate['source'],
  rates: Array<{ currency: string; date: string; rate: string }>,
): Promise<void> {
  await db.query(
    `insert into exchange_rates as x (tenant_id, entity_id, currency, rate_date, rate, source, recorded_by)
     select $1, $2, r.currency, r.rate_date, r.rate, $3, $4
       from unnest($5::text[], $6::date[], $7::numeric[]) with ordinality as r(currency, rate_date, rate, position)
      order by r.position
     on conflict (tenant_id, entity_id, currency, rate_date)
     do update set rate = excluded.rate, source = excluded.source, recorded_by = excluded.recorded_by,
                   recorded_at = now()`,
    [
      db.tenantId,
      entityId,
      source,
      recordedBy,
      rates.map((rate) => rate.currency),
      rates.map((rate) => rate.date),
      rates.map((rate) => rate.rate),
    ],
  );
}

export interface RatePosition {
  currency: string;
  date: string;
}

export async function listRates(
  db: TenantDb,
  entityId: string,
  filter: { currency: string | null; from: string | null; to: string | null },
  after: RatePosition | null,
  limit: number,
): Promise<ExchangeRate[]> {
  const { rows } = await db.query<{
    currency: string;
    rate_date: string;
    rate: string;
    source: ExchangeRate['source'];
    recorded_at: Date;
  }>(
    `select currency, rate_date::text as rate_date, rate::text as rate, source, recorded_at
       from exchange_rates
      where entity_id = $1 and ($2::text is null or currency = $2)
        and ($3::date is null or rate_date >= $3) and ($4::date is null or rate_date <= $4)
        and ($5::text is null or (currency, rate_date) > ($5::text, $6::date))
      order by currency, rate_date
      limit $7`,
    [entityId, filter.currency, filter.from, filter.to, after?.currency ?? null, after?.date ?? null, limit],
  );
  return rows.map((row) => ({
    currency: row.currency,
    date: row.rate_date,
    rate: normalizeRate(row.rate),
    source: row.source,
    recordedAt: row.recorded_at,
  }));
}

/** The latest rate of each currency on or before `asOf`. */
export async function ratesAsOf(db: TenantDb, entityId: string, asOf: string): Promise<Map<string, RateOn>> {
  const { rows } = await db.query<{ currency: string; rate_date: string; rate: string }>(
    `select distinct on (currency) currency, rate_date::text as rate_date, rate::text as rate
       from exchange_rates where entity_id = $1 and rate_date <= $2::date
      order by currency, rate_date desc`,
    [entityId, asOf],
  );
  return new Map(rows.map((row) => [row.currency, { date: row.rate_date, rate: normalizeRate(row.rate) }]));
}

export interface RateOn {
  date: string;
  rate: string;
}
