import { Type } from 'typebox';
import { requirePermission } from '../../identity/access.ts';
import { requirePrincipal } from '../../identity/auth.plugin.ts';
import type { App } from '../../platform/http/http-types.ts';
import { sendIdempotent } from '../../platform/http/idempotent-reply.ts';
import { IdempotencyHeaders, problemResponses, tenantSecurity } from '../../platform/http/schemas.ts';
import { formatId } from '../../platform/ids.ts';
import { checkDate } from '../dates.ts';
import {
  DateSchema,
  datePattern,
  decodeCursor,
  EntityParams,
  EntryInputSchema,
  encodeCursor,
  pathId,
  renderEntry,
  uuidPattern,
} from '../ledger.http.ts';
import { ledgerLimits } from '../ledger.limits.ts';
import type { JournalService } from './journal.service.ts';

const EntryParams = Type.Object({
  entityId: Type.String({ maxLength: 100 }),
  entryId: Type.String({ maxLength: 100 }),
});

const ListQuery = Type.Object(
  {
    from: Type.Optional(DateSchema),
    to: Type.Optional(DateSchema),
    limit: Type.Integer({ minimum: 1, maximum: ledgerLimits.pageSizeMax, default: ledgerLimits.pageSizeDefault }),
    cursor: Type.Optional(Type.String({ maxLength: 300 })),
  },
  { additionalProperties: false },
);

const BatchBody = Type.Object(
  { entries: Type.Array(EntryInputSchema, { minItems: 1, maxItems: ledgerLimits.entriesPerBatchMax }) },
  { additionalProperties: false },
);

const ReverseBody = Type.Object(
  {
    date: Type.Optional(DateSchema),
    memo: Type.Optional(Type.String({ maxLength: ledgerLimits.memoLengthMax })),
  },
  { additionalProperties: false },
);

/** A thousand entries of a few lines each outgrow the platform's default body limit. */
const batchBodyBytesMax = 4 * 1024 * 1024;

const postingHeaders = IdempotencyHeaders;

export async function journalRoutes(app: App, options: { journal: JournalService }): Promise<void> {
  const { journal } = options;

  app.get(
    '/v1/entities/:entityId/journal-entries',
    {
      config: { ...requirePermission('ledger.journal.read') },
      schema: {
        summary: 'List journal entries by date, a page at a time',
        tags: ['journal'],
        security: tenantSecurity,
        params: EntityParams,
        querystring: ListQuery,
        response: {
          200: Type.Object({
            items: Type.Array(Type.Ref('JournalEntry')),
            nextCursor: Type.Union([Type.String(), Type.Null()]),
          }),
          ...problemResponses,
        },
      },
    },
    async (request) => {
      const principal = requirePrincipal(request);
      const entityId = pathId('entity', request.params.entityId, 'ENTITY_NOT_FOUND');
      const { from, to, limit, cursor } = request.query;
      const after = decodeCursor(cursor, (value) =>
        typeof value.date === 'string' &&
        datePattern.test(value.date) &&
        typeof value.id === 'string' &&
        uuidPattern.test(value.id)
          ? { date: value.date, id: value.id }
          : null,
      );
      const range = {
        from: from === undefined ? null : checkDate(from, 'from'),
        to: to === undefined ? null : checkDate(to, 'to'),
      };
      const page = await journal.list(principal.tenant, entityId, range, after, limit);
      return { items: page.items.map(renderEntry), nextCursor: encodeCursor(page.next) };
    },
  );

  app.get(
    '/v1/entities/:entityId/journal-entries/:entryId',
    {
      config: { ...requirePermission('ledger.journal.read') },
      schema: {
        summary: 'Read one journal entry with its lines',
        tags: ['journal'],
        security: tenantSecurity,
        params: EntryParams,
        response: { 200: Type.Ref('JournalEntry'), ...problemResponses },
      },
    },
    async (request) => {
      const principal = requirePrincipal(request);
      const entityId = pathId('entity', request.params.entityId, 'ENTITY_NOT_FOUND');
      const entryId = pathId('journalEntry', request.params.entryId, 'LEDGER_ENTRY_NOT_FOUND');
      return renderEntry(await journal.get(principal.tenant, entityId, entryId));
    },
  );

  app.post(
    '/v1/entities/:entityId/journal-entries',
    {
      config: { ...requirePermission('ledger.journal.post') },
      schema: {
        summary: 'Post a standard journal entry (Idempotency-Key required)',
        tags: ['journal'],
        security: tenantSecurity,
        params: EntityParams,
        headers: postingHeaders,
        body: EntryInputSchema,
        response: { 201: Type.Ref('JournalEntry'), ...problemResponses },
      },
    },
    async (request, reply) => {
      const principal = requirePrincipal(request);
      const entityId = pathId('entity', request.params.entityId, 'ENTITY_NOT_FOUND');
      const result = await journal.post(
        principal.tenant,
        principal.userId,
        entityId,
        request.body,
        request.headers['idempotency-key'],
        renderEntry,
      );
      return sendIdempotent(
        reply,
        result,
        (body) => `/v1/entities/${request.params.entityId}/journal-entries/${body.id}`,
      );
    },
  );

  app.post(
    '/v1/entities/:entityId/journal-entries/batch',
    {
      config: { ...requirePermission('ledger.journal.post') },
      bodyLimit: batchBodyBytesMax,
      schema: {
        summary: `Post up to ${ledgerLimits.entriesPerBatchMax} entries atomically (Idempotency-Key required)`,
        tags: ['journal'],
        security: tenantSecurity,
        params: EntityParams,
        headers: postingHeaders,
        body: BatchBody,
        response: {
          201: Type.Object({
            count: Type.Integer(),
            items: Type.Array(Type.Object({ id: Type.String(), date: Type.String(), lineCount: Type.Integer() }), {
              description: 'The posted entries in request order; read one for its lines.',
            }),
          }),
          ...problemResponses,
        },
      },
    },
    async (request, reply) => {
      const principal = requirePrincipal(request);
      const entityId = pathId('entity', request.params.entityId, 'ENTITY_NOT_FOUND');
      const result = await journal.postBatch(
        principal.tenant,
        principal.userId,
        entityId,
        request.body.entries,
        request.headers['idempotency-key'],
        (entries) => ({
          count: entries.length,
          items: entries.map((entry) => ({
            id: formatId('journalEntry', entry.id),
            date: entry.date,
            lineCount: entry.lines.length,
          })),
        }),
      );
      return sendIdempotent(reply, result);
    },
  );

  app.post(
    '/v1/entities/:entityId/journal-entries/:entryId/reverse',
    {
      config: { ...requirePermission('ledger.journal.reverse') },
      schema: {
        summary: 'Post the reversal of an entry, linked to it (Idempotency-Key required)',
        tags: ['journal'],
        security: tenantSecurity,
        params: EntryParams,
        headers: postingHeaders,
        body: ReverseBody,
        response: { 201: Type.Ref('JournalEntry'), ...problemResponses },
      },
    },
    async (request, reply) => {
      const principal = requirePrincipal(request);
      const entityId = pathId('entity', request.params.entityId, 'ENTITY_NOT_FOUND');
      const entryId = pathId('journalEntry', request.params.entryId, 'LEDGER_ENTRY_NOT_FOUND');
      const result = await journal.reverse(
        principal.tenant,
        principal.userId,
        entityId,
        entryId,
        request.body,
        request.headers['idempotency-key'],
        renderEntry,
      );
      return sendIdempotent(
        reply,
        result,
        (body) => `/v1/entities/${request.params.entityId}/journal-entries/${body.id}`,
      );
    },
  );
}
