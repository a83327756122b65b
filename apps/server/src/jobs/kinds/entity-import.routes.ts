import { Type } from 'typebox';
import { requirePermission } from '../../identity/access.ts';
import { requirePrincipal } from '../../identity/auth.plugin.ts';
import { AppError } from '../../platform/errors.ts';
import type { App } from '../../platform/http/http-types.ts';
import { sendIdempotent } from '../../platform/http/idempotent-reply.ts';
import { IdempotencyHeaders, problemResponses, tenantSecurity } from '../../platform/http/schemas.ts';
import { JobAccepted, renderAccepted } from '../jobs.accepted.ts';
import type { JobsService } from '../jobs.service.ts';
import {
  checkRowCount,
  entityImportKind,
  entityImportLimits,
  type ImportRow,
  importColumns,
  rowsFromCsv,
} from './entity-import.ts';

// Rows of a JSON list are checked one by one by the job and reported per row (an unknown
// field is a row error), so the request schema only fixes the shape: a list of objects.
const JsonRows = Type.Array(
  Type.Object(Object.fromEntries(importColumns.map((column) => [column, Type.Optional(Type.Unknown())])), {
    additionalProperties: true,
    description: `Fields: ${importColumns.join(', ')}.`,
  }),
  { maxItems: entityImportLimits.rowsMax },
);

/** POST /v1/entities/imports: queue an import of client entities and answer 202 with the job. */
export async function entityImportRoutes(app: App, options: { jobs: JobsService }): Promise<void> {
  const { jobs } = options;
  // Encapsulated: text/csv is accepted by this plugin's routes only.
  app.addContentTypeParser(
    'text/csv',
    { parseAs: 'string', bodyLimit: entityImportLimits.bodyBytesMax },
    (_request, body, done) => done(null, body),
  );
  app.addHook('onRequest', app.authenticateTenant);

  app.post(
    '/v1/entities/imports',
    {
      // Queueing batch work: shed first under overload, and not what batch work yields to.
      config: { routeClass: 'batch', ...requirePermission('entities.import') },
      bodyLimit: entityImportLimits.bodyBytesMax,
      schema: {
        summary: 'Import client entities from CSV (text/csv, header row) or a JSON list; runs as a job',
        description: `Answers 202 with the job to watch (GET /v1/jobs/{id}, or its events). Columns: ${importColumns.join(', ')}; at most ${entityImportLimits.rowsMax} rows. Each row is validated like POST /v1/entities and reported as created, duplicate or invalid.`,
        tags: ['entities', 'jobs'],
        security: tenantSecurity,
        headers: IdempotencyHeaders,
        body: {
          content: {
            'application/json': { schema: JsonRows },
            'text/csv': { schema: Type.String({ description: 'CSV with a header row.' }) },
          },
        },
        response: { 202: JobAccepted, ...problemResponses },
      },
    },
    async (request, reply) => {
      const principal = requirePrincipal(request);
      const body: unknown = request.body;
      let source: 'csv' | 'json';
      let rows: ImportRow[];
      if (typeof body === 'string') {
        source = 'csv';
        rows = rowsFromCsv(body);
      } else if (Array.isArray(body)) {
        source = 'json';
        checkRowCount(body.length);
        rows = body as ImportRow[];
      } else {
        throw new AppError('REQUEST_VALIDATION_FAILED', 'The body must be CSV text or a JSON list of rows.');
      }
      const result = await jobs.submitIdempotent(
        principal.tenant,
        { kind: entityImportKind, payload: { createdBy: principal.userId, source, rows }, createdBy: principal.userId },
        { key: request.headers['idempotency-key'], route: 'POST /v1/entities/imports', request: { source, rows } },
        renderAccepted,
      );
      return sendIdempotent(reply, result, (body) => body.links.job);
    },
  );
}
