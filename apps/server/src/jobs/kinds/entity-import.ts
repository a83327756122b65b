import { CsvError, parse } from 'csv-parse/sync';
import { recordAuditEvent } from '../../audit/audit.service.ts';
import { entityLimits } from '../../entities/entities.limits.ts';
import { insertEntities, refreshEntityStatistics } from '../../entities/entities.store.ts';
import { type Entity, type EntityType, entityTypes } from '../../entities/entities.types.ts';
import { assert } from '../../platform/assert.ts';
import { AppError } from '../../platform/errors.ts';
import { formatId, newUuid } from '../../platform/ids.ts';
import { readRowReports, writeRowReports } from '../jobs.store.ts';
import type { JobContext, JobKind, JsonValue } from '../jobs.types.ts';

/**
 * The first real job kind: importing client entities from a CSV file or a JSON list. The
 * request is checked for shape only (readable CSV, known columns, row count); every row is
 * validated by the job and reported one by one, so one bad row never sinks the others.
 *
 * Idempotent twice over: the request takes an Idempotency-Key (a retried POST returns the
 * same job), and the job commits each batch of rows together with its checkpoint in one
 * tenant transaction, so a retried or recovered attempt resumes after the last committed
 * batch and never creates an entity twice. A name that already exists is reported as
 * `duplicate`, so importing the same file again creates nothing.
 */
export const entityImportKind = 'entities.import';

export const entityImportLimits = {
  rowsMax: 5_000,
  /** Rows per tenant transaction (and per checkpoint). */
  batchRows: 100,
  bodyBytesMax: 2 * 1024 * 1024,
  csvFieldBytesMax: 4_096,
  maxAttempts: 5,
  timeoutMs: 10 * 60_000,
} as const;

export const importColumns = ['name', 'entityType', 'baseCurrency', 'fiscalYearEnd'] as const;
type ImportColumn = (typeof importColumns)[number];

/** One input row, as given: CSV cells are strings; a JSON list may hold anything. */
export type ImportRow = Record<string, JsonValue>;

export interface EntityImportPayload {
  createdBy: string;
  source: 'csv' | 'json';
  rows: ImportRow[];
}

export interface RowReport {
  row: number;
  status: 'created' | 'duplicate' | 'invalid';
  entityId?: string;
  name?: string;
  errors?: string[];
}

export interface ImportReport {
  rows: number;
  created: number;
  duplicates: number;
  invalid: number;
  report: RowReport[];
}

/**
 * What a committed batch leaves behind: the next row to import. The rows' reports are in
 * job_row_reports (migration 0018); a checkpoint written before it also carries `report`, the
 * rows reported so far.
 */
interface Checkpoint {
  nextRow: number;
  report?: RowReport[];
}

/** Reads CSV text with a header row into rows. Errors: IMPORT_CSV_INVALID, IMPORT_EMPTY, IMPORT_TOO_MANY_ROWS. */
export function rowsFromCsv(text: string): ImportRow[] {
  let records: string[][];
  try {
    records = parse(text, {
      bom: true,
      trim: true,
      skip_empty_lines: true,
      max_record_size: entityImportLimits.csvFieldBytesMax * importColumns.length,
      to_line: entityImportLimits.rowsMax + 2,
    });
  } catch (error) {
    if (error instanceof CsvError) throw new AppError('IMPORT_CSV_INVALID', error.message);
    throw error;
  }
  const [header, ...body] = records;
  if (header === undefined) throw new AppError('IMPORT_EMPTY');
  const unknown = header.filter((column) => !(importColumns as readonly string[]).includes(column));
  if (unknown.length > 0) {
    throw new AppError(
      'IMPORT_CSV_INVALID',
      `Unknown column(s) ${unknown.map((column) => `"${column}"`).join(', ')}; the columns are ${importColumns.join(', ')}.`,
    );
  }
  if (!header.includes('name')) throw new AppError('IMPORT_CSV_INVALID', 'The header row must name a "name" column.');
  if (new Set(header).size !== header.length) throw new AppError('IMPORT_CSV_INVALID', 'A column is named twice.');
  checkRowCount(body.length);
  // Empty cells mean "not given", so defaults apply as they would to a JSON field left out.
  return body.map((cells) =>
    Object.fromEntries(header.flatMap((column, index) => (cells[index] ? [[column, cells[index]]] : []))),
  );
}

/** Errors: IMPORT_EMPTY, IMPORT_TOO_MANY_ROWS. */
export function checkRowCount(count: number): void {
  if (count === 0) throw new AppError('IMPORT_EMPTY');
  if (count > entityImportLimits.rowsMax) {
    throw new AppError('IMPORT_TOO_MANY_ROWS', `An import holds at most ${entityImportLimits.rowsMax} rows.`);
  }
}

type ValidRow = Pick<Entity, 'name' | 'entityType' | 'baseCurrency' | 'fiscalYearEnd'>;

const fieldRules: Record<ImportColumn, { pattern: RegExp; message: string }> = {
  name: { pattern: /\S/, message: 'must be a non-blank text' },
  entityType: {
    pattern: new RegExp(`^(${entityTypes.join('|')})$`),
    message: `must be one of ${entityTypes.join(', ')}`,
  },
  baseCurrency: { pattern: /^[A-Z]{3}$/, message: 'must be an ISO 4217 code such as USD' },
  fiscalYearEnd: { pattern: /^(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$/, message: 'must be MM-DD' },
};

/** The same rules as POST /v1/entities, applied to one row; returns the row or its errors. */
export function validateRow(row: ImportRow): { valid: ValidRow } | { errors: string[] } {
  const errors: string[] = [];
  for (const field of Object.keys(row)) {
    if (!(importColumns as readonly string[]).includes(field)) errors.push(`${field}: is not a known field`);
  }
  for (const field of importColumns) {
    const value = row[field];
    if (value === undefined) continue;
    if (typeof value !== 'string') errors.push(`${field}: must be a string`);
    else if (!fieldRules[field].pattern.test(value)) errors.push(`${field}: ${fieldRules[field].message}`);
  }
  const name = typeof row.name === 'string' ? row.name.trim() : '';
  if (row.name === undefined) errors.push('name: is required');
  else if (name.length > entityLimits.nameLengthMax) errors.push(`name: is longer than ${entityLimits.nameLengthMax}`);
  if (errors.length > 0) return { errors };
  return {
    valid: {
      name,
      entityType: (row.entityType as EntityType | undefined) ?? null,
      baseCurrency: (row.baseCurrency as string | undefined) ?? 'USD',
      fiscalYearEnd: (row.fiscalYearEnd as string | undefined) ?? '12-31',
    },
  };
}

function parsePayload(payload: JsonValue): EntityImportPayload {
  assert(typeof payload === 'object' && payload !== null && !Array.isArray(payload), 'import payload is an object');
  const { createdBy, source, rows } = payload;
  assert(typeof createdBy === 'string' && /^[0-9a-f-]{36}$/.test(createdBy), 'import payload names its user');
  assert(source === 'csv' || source === 'json', 'import payload names its source');
  assert(Array.isArray(rows), 'import payload holds rows');
  for (const row of rows) assert(typeof row === 'object' && row !== null && !Array.isArray(row), 'rows are objects');
  return { createdBy, source, rows: rows as ImportRow[] };
}

function checkpointOf(value: JsonValue | null): Checkpoint {
  if (value === null) return { nextRow: 0 };
  const checkpoint = value as unknown as Checkpoint;
  assert(
    Number.isInteger(checkpoint.nextRow) && (checkpoint.report === undefined || Array.isArray(checkpoint.report)),
    'import checkpoint shape',
  );
  return checkpoint;
}

function summarise(rows: number, report: RowReport[]): ImportReport {
  const count = (status: RowReport['status']) => report.filter((entry) => entry.status === status).length;
  return { rows, created: count('created'), duplicates: count('duplicate'), invalid: count('invalid'), report };
}

async function runImport(context: JobContext<EntityImportPayload>): Promise<JsonValue> {
  const { payload, signal } = context;
  const total = payload.rows.length;
  const checkpoint = checkpointOf(context.job.checkpoint);
  let { nextRow } = checkpoint;
  // Entities created since the planner's statistics were last refreshed (by this attempt).
  let unanalyzed = 0;
  while (nextRow < total) {
    signal.throwIfAborted();
    const batchEnd = Math.min(nextRow + entityImportLimits.batchRows, total);
    const batch = payload.rows.slice(nextRow, batchEnd);
    const start = nextRow;
    // Entities and the checkpoint saying they are done commit together, or neither does.
    const committed = await context.scopes.run(context.tenant, async (db) => {
      // The earlier batches' entities are committed, so an ANALYZE here counts them (and
      // commits, or rolls back, with this batch).
      const analyzed = await refreshEntityStatistics(db, unanalyzed);
      const batchReport = await importRows(db, batch, start + 1, payload.createdBy);
      const createdInBatch = batchReport.filter((entry) => entry.status === 'created').length;
      // Only this batch's rows are written: the checkpoint stays a few bytes however far in.
      await writeRowReports(
        db,
        context.job.id,
        batchReport.map((entry) => ({ row: entry.row, report: entry as unknown as JsonValue })),
      );
      await context.saveCheckpoint(db, { nextRow: batchEnd });
      // One event per committed batch, on behalf of the user who submitted the import.
      await recordAuditEvent(db, {
        action: 'entity.import',
        resource: { type: 'job', id: formatId('job', context.job.id) },
        after: batchReport,
        summary: {
          fromRow: start + 1,
          toRow: batchEnd,
          created: createdInBatch,
        },
        origin: {
          actor: { kind: 'user', id: formatId('user', payload.createdBy) },
          requestId: null,
          sourceAddress: null,
        },
      });
      return { analyzed, created: createdInBatch };
    });
    unanalyzed = (committed.analyzed ? 0 : unanalyzed) + committed.created;
    nextRow = batchEnd;
    context.progress((nextRow / total) * 100, `${nextRow} of ${total} rows`);
  }
  const stored = await context.scopes.run(context.tenant, async (db) => {
    await refreshEntityStatistics(db, unanalyzed);
    return await readRowReports(db, context.job.id);
  });
  const report = [...(checkpoint.report ?? []), ...(stored as unknown as RowReport[])];
  return summarise(total, report) as unknown as JsonValue;
}

/** Validates each row and creates the valid ones with one statement; reports every row, numbered from `firstRow`. */
async function importRows(
  db: Parameters<typeof insertEntities>[0],
  rows: readonly ImportRow[],
  firstRow: number,
  createdBy: string,
): Promise<RowReport[]> {
  const now = new Date();
  const checked = rows.map((row) => {
    const result = validateRow(row);
    if ('errors' in result) return result;
    const entity: Entity = {
      ...result.valid,
      id: newUuid(),
      // The import takes the basic fields only; legal name and taxpayer id are set afterwards.
      legalName: null,
      taxpayerIdLast4: null,
      status: 'active',
      createdBy,
      createdAt: now,
      updatedAt: now,
    };
    return { entity };
  });
  const inserted = await insertEntities(
    db,
    checked.flatMap((result) => ('entity' in result ? [result.entity] : [])),
  );
  return checked.map((result, index): RowReport => {
    const row = firstRow + index;
    if ('errors' in result) return { row, status: 'invalid', errors: result.errors };
    const { entity } = result;
    if (!inserted.has(entity.id)) return { row, status: 'duplicate', name: entity.name };
    return { row, status: 'created', entityId: formatId('entity', entity.id), name: entity.name };
  });
}

export const entityImportJob: JobKind<EntityImportPayload> = {
  kind: entityImportKind,
  parsePayload,
  run: runImport,
  maxAttempts: entityImportLimits.maxAttempts,
  timeoutMs: entityImportLimits.timeoutMs,
};
