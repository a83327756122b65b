import { Type } from 'typebox';
import { requirePermission } from '../../identity/access.ts';
import { requirePrincipal } from '../../identity/auth.plugin.ts';
import { AppError } from '../../platform/errors.ts';
import type { App } from '../../platform/http/http-types.ts';
import { sendIdempotent } from '../../platform/http/idempotent-reply.ts';
import { IdempotencyHeaders, problemResponses, tenantSecurity } from '../../platform/http/schemas.ts';
import { checkDate } from '../dates.ts';
import { DateSchema, datePattern, decodeCursor, EntityParams, encodeCursor, pathId } from '../ledger.http.ts';
import { ledgerLimits } from '../ledger.limits.ts';
import { exchangeRatePattern } from '../money.ts';
import type { ExchangeRatesService } from './exchange-rates.service.ts';

const RateSchema = Type.Object(
  {
    currency: Type.String({ pattern: '^[A-Z]{3}$' }),
    date: DateSchema,
    rate: Type.String({ pattern: exchangeRatePattern.source, description: 'Base-currency units per unit.' }),
  },
  { additionalProperties: false },
);

const RecordBody = Type.Object(
  {
    rates: Type.Array(RateSchema, { minItems: 1, maxItems: ledgerLimits.ratesPerRequestMax }),
    source: Type.Optional(Type.Union([Type.Literal('manual'), Type.Literal('import')])),
  },
  { additionalProperties: false },
);

const ListQuery = Type.Object(
  {
    currency: Type.Optional(Type.String({ pattern: '^[A-Z]{3}$' })),
    from: Type.Optional(DateSchema),
    to: Type.Optional(DateSchema),
    limit: Type.Integer({ minimum: 1, maximum: ledgerLimits.pageSizeMax, default: ledgerLimits.pageSizeDefault }),
    cursor: Type.Optional(Type.String({ maxLength: 200 })),
  },
  { additionalProperties: false },
);

const RateView = Type.Object(
  {
    currency: Type.String(),
    date: Type.String(),
    rate: Type.String(),
    source: Type.Union([Type.Literal('manual'), Type.Literal('import')]),
    recordedAt: Type.String({ format: 'date-time' }),
  },
  { additionalProperties: false },
);

const RecordedReply = Type.Object({ recorded: Type.Integer() }, { additionalProperties: false });

export async function exchangeRatesRoutes(app: App, options: { rates: ExchangeRatesService }): Promise<void> {
  const { rates } = options;
  // Encapsulated: text/csv is accepted by the routes of this plugin only.
  app.addContentTypeParser(
    'text/csv',
    { parseAs: 'string', bodyLimit: ledgerLimits.ratesImportBytesMax },
    (_request, body, done) => done(null, body),
  );

  app.put(
    '/v1/entities/:entityId/exchange-rates',
    {
      config: { ...requirePermission('ledger.rates.write') },
      schema: {
        summary: 'Record exchange rates into the base currency (one, or an import of up to 1,000); same date replaces',
        tags: ['exchange rates'],
        security: tenantSecurity,
        params: EntityParams,
        body: RecordBody,
        response: { 200: RecordedReply, ...problemResponses },
      },
    },
    async (request) => {
      const principal = requirePrincipal(request);
      const entityId = pathId('entity', request.params.entityId, 'ENTITY_NOT_FOUND');
      const recorded = await rates.record(
        principal.tenant,
        principal.userId,
        entityId,
        request.body.source ?? 'manual',
        request.body.rates,
      );
      return { recorded };
    },
  );

  app.post(
    '/v1/entities/:entityId/exchange-rates/import',
    {
      config: { ...requirePermission('ledger.rates.write') },
      bodyLimit: ledgerLimits.ratesImportBytesMax,
      schema: {
        summary: 'Import exchange rates from a CSV file (text/csv: header date,currency,rate); all or none',
        description: `One rate a row, base-currency units per unit; at most ${ledgerLimits.ratesPerImportMax} rows. A rate for a currency and date already recorded is replaced. One bad row refuses the file with LEDGER_RATES_IMPORT_ROWS_INVALID, listing every bad row (by line number) in \`rows\`, and records nothing.`,
        tags: ['exchange rates'],
        security: tenantSecurity,
        params: EntityParams,
        headers: IdempotencyHeaders,
        body: {
          content: {
            'text/csv': { schema: Type.String({ description: 'CSV with a header row: date,currency,rate.' }) },
          },
        },
        response: { 200: RecordedReply, ...problemResponses },
      },
    },
    async (request, reply) => {
      const principal = requirePrincipal(request);
      const entityId = pathId('entity', request.params.entityId, 'ENTITY_NOT_FOUND');
      const body: unknown = request.body;
      // JSON still parses in this scope (the PUT takes it), so a JSON body reaches here.
      if (typeof body !== 'string')
        throw new AppError('REQUEST_VALIDATION_FAILED', 'The body must be CSV text (text/csv).');
      const result = await rates.importCsv(
        principal.tenant,
        principal.userId,
        entityId,
        body,
        request.headers['idempotency-key'],
        (recorded) => ({ recorded }),
      );
      return sendIdempotent(reply, result);
    },
  );

  app.get(
    '/v1/entities/:entityId/exchange-rates',
    {
      config: { ...requirePermission('ledger.rates.read') },
      schema: {
        summary: 'List exchange rates by currency and date, a page at a time',
        tags: ['exchange rates'],
        security: tenantSecurity,
        params: EntityParams,
        querystring: ListQuery,
        response: {
          200: Type.Object(
            {
              baseCurrency: Type.String(),
              items: Type.Array(RateView),
              nextCursor: Type.Union([Type.String(), Type.Null()]),
            },
            { additionalProperties: false },
          ),
          ...problemResponses,
        },
      },
    },
    async (request) => {
      const principal = requirePrincipal(request);
      const entityId = pathId('entity', request.params.entityId, 'ENTITY_NOT_FOUND');
      const { currency, from, to, limit, cursor } = request.query;
      const after = decodeCursor(cursor, (value) =>
        typeof value.currency === 'string' &&
        /^[A-Z]{3}$/.test(value.currency) &&
        typeof value.date === 'string' &&
        datePattern.test(value.date)
          ? { currency: value.currency, date: value.date }
          : null,
      );
      const page = await rates.list(
        principal.tenant,
        entityId,
        {
          currency: currency ?? null,
          from: from === undefined ? null : checkDate(from, 'from'),
          to: to === undefined ? null : checkDate(to, 'to'),
        },
        after,
        limit,
      );
      return {
        baseCurrency: page.baseCurrency,
        items: page.items.map((rate) => ({ ...rate, recordedAt: rate.recordedAt.toISOString() })),
        nextCursor: encodeCursor(page.next),
      };
    },
  );
}
