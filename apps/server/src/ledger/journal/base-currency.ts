import type { TenantDb } from '../../platform/database/tenant-scope.ts';
import { AppError } from '../../platform/errors.ts';
import { ledgerLimits } from '../ledger.limits.ts';
import type { Line, PostingEntry } from '../ledger.types.ts';
import { exponentOf, normalizeRate, toBaseMinor } from '../money.ts';

/**
 * Converts posting lines into the entity's base currency before they are written: each line
 * gets its rate (its own, else the entity's rate on or before the entry date) and its base
 * amount; an entry whose base amounts do not net to zero gets one explicit `fx_rounding` line
 * on the entity's rounding account. The posting function checks every figure again.
 *
 * An entity's base currency never changes once it has books, so it is remembered per entity:
 * a posting wholly in the base currency then needs no query here at all. A wrong memory could
 * not post wrong figures, because the database re-derives every base amount.
 */
interface EntityCurrency {
  baseCurrency: string;
  roundingAccountId: string | null;
}

const remembered = new Map<string, EntityCurrency>();

function remember(entityId: string, currency: EntityCurrency): void {
  if (remembered.size >= ledgerLimits.rememberedEntitiesMax) remembered.clear();
  remembered.set(entityId, currency);
}

interface RateNeed {
  currency: string;
  date: string;
}

async function loadEntityCurrency(
  db: TenantDb,
  entityId: string,
  needs: RateNeed[],
): Promise<{ entity: EntityCurrency; rates: Map<string, string> }> {
  const { rows } = await db.query<{
    base_currency: string;
    rounding_account_id: string | null;
    rates: Array<{ currency: string; date: string; rate: string }>;
  }>(
    `select e.base_currency,
            (select a.id from accounts a where a.entity_id = e.id and a.system_role = 'rounding') as rounding_account_id,
            coalesce((select json_agg(json_build_object('currency', q.currency, 'date', q.on_date::text,
                                                        'rate', r.rate::text))
                        from unnest($2::text[], $3::date[]) as q(currency, on_date)
                        cross join lateral (select x.rate from exchange_rates x
                                             where x.entity_id = e.id and x.currency = q.currency
                                               and x.rate_date <= q.on_date
                                             order by x.rate_date desc limit 1) r), '[]'::json) as rates
       from entities e where e.id = $1`,
    [entityId, needs.map((need) => need.currency), needs.map((need) => need.date)],
  );
  const row = rows[0];
  if (!row) throw new AppError('ENTITY_NOT_FOUND');
  const entity = { baseCurrency: row.base_currency, roundingAccountId: row.rounding_account_id };
  remember(entityId, entity);
  return {
    entity,
    rates: new Map(row.rates.map((rate) => [`${rate.currency}|${rate.date}`, normalizeRate(rate.rate)])),
  };
}

function rateNeeds(entries: PostingEntry[], baseCurrency: string | undefined): RateNeed[] {
  const needs = new Map<string, RateNeed>();
  for (const entry of entries) {
    for (const line of entry.lines) {
      if (line.currency === baseCurrency || line.exchangeRate !== null || line.baseAmountMinor !== null) continue;
      needs.set(`${line.currency}|${entry.date}`, { currency: line.currency, date: entry.date });
    }
  }
  return [...needs.values()];
}

function convertLine(line: Line, where: string, date: string, base: string, rates: Map<string, string>): Line {
  if (line.role !== 'regular') return line;
  if (line.currency === base) {
    if (line.exchangeRate !== null && normalizeRate(line.exchangeRate) !== '1') {
      throw new AppError('LEDGER_EXCHANGE_RATE_INVALID', `${where}: a line in the base currency has rate 1`);
    }
    return { ...line, exchangeRate: '1', baseAmountMinor: line.amountMinor };
  }
  if (line.baseAmountMinor !== null) return line;
  const rate = line.exchangeRate ?? rates.get(`${line.currency}|${date}`);
  if (rate === undefined) {
    throw new AppError('LEDGER_EXCHANGE_RATE_MISSING', `${where}: no ${line.currency} rate on or before ${date}`);
  }
  const exchangeRate = normalizeRate(rate);
  return {
    ...line,
    exchangeRate,
    baseAmountMinor: toBaseMinor(line.amountMinor, exchangeRate, line.exponent, exponentOf(base)),
  };
}

/** Debit-positive net of an entry's base amounts. */
function baseNet(lines: Line[]): bigint {
  return lines.reduce((total, line) => total + (line.side === 'debit' ? 1n : -1n) * (line.baseAmountMinor ?? 0n), 0n);
}

function roundingLine(lines: Line[], net: bigint, base: string, roundingAccountId: string): Line {
  return {
    lineNo: lines.length + 1,
    accountId: roundingAccountId,
    side: net > 0n ? 'credit' : 'debit',
    amountMinor: 0n,
    currency: base,
    exponent: exponentOf(base),
    memo: 'Exchange rounding',
    exchangeRate: '1',
    baseAmountMinor: net > 0n ? net : -net,
    role: 'fx_rounding',
  };
}

/**
 * Gives every line its base amount and books rounding differences.
 * Errors: ENTITY_NOT_FOUND, LEDGER_EXCHANGE_RATE_MISSING, LEDGER_EXCHANGE_RATE_INVALID,
 * LEDGER_ROUNDING_ACCOUNT_MISSING.
 */
export async function convertToBase(db: TenantDb, entityId: string, entries: PostingEntry[]): Promise<PostingEntry[]> {
  let entity = remembered.get(entityId);
  let rates = new Map<string, string>();
  const needs = rateNeeds(entries, entity?.baseCurrency);
  if (entity === undefined || needs.length > 0) ({ entity, rates } = await loadEntityCurrency(db, entityId, needs));
  const base = entity.baseCurrency;
  const converted = entries.map((entry, index) => {
    const where = entries.length === 1 ? 'entry' : `entries[${index}]`;
    const lines = entry.lines.map((line, lineIndex) =>
      convertLine(line, `${where}.lines[${lineIndex}]`, entry.date, base, rates),
    );
    return { ...entry, lines };
  });
  const unbalanced = converted.findIndex((entry) => baseNet(entry.lines) !== 0n);
  if (unbalanced === -1) return converted;
  if (entity.roundingAccountId === null) entity = (await loadEntityCurrency(db, entityId, [])).entity;
  const roundingAccountId = entity.roundingAccountId;
  return converted.map((entry, index) => {
    const net = baseNet(entry.lines);
    if (net === 0n) return entry;
    if (roundingAccountId === null) {
      const where = converted.length === 1 ? 'entry' : `entries[${index}]`;
      throw new AppError('LEDGER_ROUNDING_ACCOUNT_MISSING', `${where}: off by ${net} base minor units`);
    }
    return { ...entry, lines: [...entry.lines, roundingLine(entry.lines, net, base, roundingAccountId)] };
  });
}
