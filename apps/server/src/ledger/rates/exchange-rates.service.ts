import { recordAuditEvent } from '../../audit/audit.service.ts';
import { assert } from '../../platform/assert.ts';
import { runIdempotent } from '../../platform/database/idempotency.ts';
import type { TenantContext, TenantScopes } from '../../platform/database/tenant-scope.ts';
import { AppError } from '../../platform/errors.ts';
import { formatId } from '../../platform/ids.ts';
import { loadBooks } from '../books.store.ts';
import { checkDate } from '../dates.ts';
import { ledgerLimits } from '../ledger.limits.ts';
import { checkCurrency, normalizeRate, parseRate } from '../money.ts';
import { checkRateRows, rateRowsFromCsv, ratesOfRows, rowsInvalid } from './exchange-rates.csv.ts';
import { type ExchangeRate, listRates, type RatePosition, upsertRates } from './exchange-rates.store.ts';

export interface RateInput {
  currency: string;
  date: string;
  rate: string;
}

/** Exchange rates of a client entity: base-currency units per unit of another currency, per date. */
export class ExchangeRatesService {
  readonly #scopes: TenantScopes;

  constructor(scopes: TenantScopes) {
    this.#scopes = scopes;
  }

  /**
   * Records rates (one entered by hand, or an import of many), replacing any for the same
   * currency and date; all or none. A rate changes no posted line: each line keeps its own.
   * Errors: ENTITY_NOT_FOUND, LEDGER_CURRENCY_UNKNOWN, LEDGER_RATE_CURRENCY_IS_BASE,
   * LEDGER_EXCHANGE_RATE_INVALID, LEDGER_DATE_INVALID, REQUEST_VALIDATION_FAILED.
   */
  async record(
    tenant: TenantContext,
    userId: string,
    entityId: string,
    source: ExchangeRate['source'],
    inputs: RateInput[],
  ): Promise<number> {
    if (inputs.length > ledgerLimits.ratesPerRequestMax) {
      throw new AppError('REQUEST_VALIDATION_FAILED', `At most ${ledgerLimits.ratesPerRequestMax} rates at once.`);
    }
    const rates = inputs.map((input, index) => {
      const where = `rates[${index}]`;
      checkCurrency(input.currency, undefined, `${where}.currency`);
      checkDate(input.date, `${where}.date`);
      parseRate(input.rate, `${where}.rate`);
      return { currency: input.currency, date: input.date, rate: normalizeRate(input.rate) };
    });
    return await this.#scopes.run(tenant, async (db) => {
      const books = await loadBooks(db, entityId);
      const index = rates.findIndex((rate) => rate.currency === books.baseCurrency);
      if (index >= 0) throw new AppError('LEDGER_RATE_CURRENCY_IS_BASE', `rates[${index}]: ${books.baseCurrency}`);
      await upsertRates(db, entityId, userId, source, rates);
      // One event per request; the digest covers every rate recorded.
      await recordAuditEvent(db, {
        action: 'exchange_rate.record',
        entityId,
        resource: { type: 'exchange_rates', id: formatId('entity', entityId) },
        after: rates,
        summary: { source, rates: rates.length },
      });
      return rates.length;
    });
  }

  /**
   * Records the rates of a CSV file, all or none: one bad row refuses the file, naming every
   * bad row. Same date replaces, as `record` does. With an
   * idempotency key a retry answers the first result without recording or auditing again.
   * Errors: ENTITY_NOT_FOUND, LEDGER_RATES_CSV_INVALID, LEDGER_RATES_IMPORT_ROWS_INVALID,
   * IDEMPOTENCY_KEY_INVALID, IDEMPOTENCY_KEY_REUSED.
   */
  async importCsv<Body>(
    tenant: TenantContext,
    userId: string,
    entityId: string,
    csv: string,
    idempotencyKey: string | undefined,
    render: (recorded: number) => Body,
  ): Promise<{ status: number; body: Body; replayed: boolean }> {
    const route = `POST /v1/entities/${entityId}/exchange-rates/import`;
    return await this.#scopes.run(tenant, async (db) => {
      // The entity first: a caller who may not see it learns nothing from the file's faults.
      await loadBooks(db, entityId);
      const rows = rateRowsFromCsv(csv);
      assert(
        rows.length >= 1 && rows.length <= ledgerLimits.ratesPerImportMax,
        'an import holds a bounded number of rows',
      );
      return await runIdempotent(db, idempotencyKey, route, rows, async () => {
        const books = await loadBooks(db, entityId);
        const problems = checkRateRows(rows, books.baseCurrency);
        if (problems.length > 0) throw rowsInvalid(problems);
        const rates = ratesOfRows(rows);
        await upsertRates(db, entityId, userId, 'import', rates);
        await recordAuditEvent(db, {
          action: 'exchange_rate.import',
          entityId,
          resource: { type: 'exchange_rates', id: formatId('entity', entityId) },
          after: rates,
          summary: { source: 'import', format: 'csv', rates: rates.length },
        });
        return { status: 200, body: render(rates.length) };
      });
    });
  }

  /** Errors: ENTITY_NOT_FOUND, REPORT_RANGE_INVALID. */
  async list(
    tenant: TenantContext,
    entityId: string,
    filter: { currency: string | null; from: string | null; to: string | null },
    after: RatePosition | null,
    limit: number,
  ): Promise<{ baseCurrency: string; items: ExchangeRate[]; next: RatePosition | null }> {
    if (filter.from !== null && filter.to !== null && filter.from > filter.to)
      throw new AppError('REPORT_RANGE_INVALID');
    return await this.#scopes.run(tenant, async (db) => {
      const books = await loadBooks(db, entityId);
      const rows = await listRates(db, entityId, filter, after, limit + 1);
      const items = rows.slice(0, limit);
      const last = items.at(-1);
      return {
        baseCurrency: books.baseCurrency,
        items,
        next: rows.length > limit && last ? { currency: last.currency, date: last.date } : null,
      };
    });
  }
}
