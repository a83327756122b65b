import { createHash } from 'node:crypto';
import { strToU8 } from 'fflate';
import { recordAuditEvent } from '../../audit/audit.service.ts';
import { renderAccepted } from '../../jobs/jobs.accepted.ts';
import type { JobsService } from '../../jobs/jobs.service.ts';
import type { JobContext, JobKind, JsonValue } from '../../jobs/jobs.types.ts';
import { assert } from '../../platform/assert.ts';
import type { TenantContext, TenantScopes } from '../../platform/database/tenant-scope.ts';
import { AppError } from '../../platform/errors.ts';
import { formatId } from '../../platform/ids.ts';
import { loadBooks } from '../books.store.ts';
import type { ReportRenderer } from './report-renderer.ts';
import { balanceSheetSections, incomeStatementSections, statementCsv, trialBalanceCsv } from './reports.render.ts';
import { type ReportChecks, ReportsService } from './reports.service.ts';
import { balanceSheetTable, incomeStatementTable, trialBalanceTable } from './statement-table.ts';

/**
 * Report packs: a client entity's month-end or year-end package — trial balance, income
 * statement and balance sheet for a period, each in the formats asked for, with a manifest
 * of the figures' checks — rendered by a `reports.pack` job and kept as one ZIP archive.
 * The job reads the books through the job's tenant scope, so the work is paced and runs at
 * batch priority like any other job; a firm downloads the archive once the job succeeds.
 */
export const reportPackKind = 'reports.pack';

export const packFormats = ['pdf', 'xlsx', 'csv'] as const;
export type PackFormat = (typeof packFormats)[number];

export const reportPackLimits = {
  maxAttempts: 3,
  timeoutMs: 10 * 60_000,
} as const;

export interface ReportPackPayload {
  entityId: string;
  /** Start of the income statement's range; null: the fiscal year's start, as the report does. */
  from: string | null;
  to: string;
  formats: PackFormat[];
  /** The public id of who asked, kept with the pack. */
  requestedBy: string;
}

/** A type, not an interface, so a list of them is a JSON value as it stands. */
export type PackFile = {
  name: string;
  bytes: number;
  sha256: string;
};

export interface ReportPack {
  id: string;
  entityId: string;
  from: string;
  to: string;
  files: PackFile[];
  archive: Buffer;
  sha256: string;
}

const datePattern = /^\d{4}-\d{2}-\d{2}$/;
const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function parsePayload(payload: JsonValue): ReportPackPayload {
  assert(typeof payload === 'object' && payload !== null && !Array.isArray(payload), 'pack payload is an object');
  const { entityId, from, to, formats, requestedBy } = payload;
  assert(typeof entityId === 'string' && uuidPattern.test(entityId), 'pack payload names its entity');
  assert(from === null || (typeof from === 'string' && datePattern.test(from)), 'pack payload from is a date');
  assert(typeof to === 'string' && datePattern.test(to), 'pack payload to is a date');
  assert(
    Array.isArray(formats) && formats.every((format) => (packFormats as readonly unknown[]).includes(format)),
    'pack payload formats are known',
  );
  assert(typeof requestedBy === 'string' && requestedBy.length > 0, 'pack payload names who asked');
  return { entityId, from, to, formats: formats as PackFormat[], requestedBy };
}

const checksJson = (checks: ReportChecks): JsonValue => ({
  balanced: checks.balanced,
  tiesToJournal: checks.tiesToJournal,
});

const sha256Hex = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** Renders the pack's files and its archive; the manifest lists every other file with its digest. */
async function renderPack(
  context: Pick<JobContext<ReportPackPayload>, 'tenant' | 'scopes' | 'progress'>,
  renderer: ReportRenderer,
  payload: ReportPackPayload,
) {
  const reports = new ReportsService(context.scopes);
  const { tenant } = context;
  const entityId = payload.entityId;
  context.progress(5, 'trial balance');
  const trialBalance = await reports.trialBalance(tenant, entityId, {
    asOf: payload.to,
    basis: 'pre-closing',
    verify: true,
  });
  context.progress(35, 'income statement');
  const incomeStatement = await reports.incomeStatement(tenant, entityId, {
    from: payload.from ?? undefined,
    to: payload.to,
    verify: true,
  });
  context.progress(65, 'balance sheet');
  const balanceSheet = await reports.balanceSheet(tenant, entityId, { asOf: payload.to, verify: true });
  context.progress(85, 'archive');

  const statements = [
    {
      name: 'trial-balance',
      csv: () => trialBalanceCsv(trialBalance),
      table: () => trialBalanceTable(entityId, trialBalance),
    },
    {
      name: 'income-statement',
      csv: () => statementCsv(incomeStatementSections(incomeStatement)),
      table: () => incomeStatementTable(entityId, incomeStatement),
    },
    {
      name: 'balance-sheet',
      csv: () => statementCsv(balanceSheetSections(balanceSheet)),
      table: () => balanceSheetTable(entityId, balanceSheet),
    },
  ];
  const contents: Record<string, Uint8Array> = {};
  for (const statement of statements) {
    for (const format of payload.formats) {
      const name = `${statement.name}.${format}`;
      if (format === 'csv') contents[name] = strToU8(statement.csv());
      else if (format === 'xlsx') contents[name] = await renderer.xlsx(statement.table());
      else contents[name] = await renderer.pdf(statement.table());
    }
  }
  const files: PackFile[] = Object.entries(contents).map(([name, bytes]) => ({
    name,
    bytes: bytes.length,
    sha256: sha256Hex(bytes),
  }));
  const manifest = {
    entityId: formatId('entity', entityId),
    from: incomeStatement.from,
    to: payload.to,
    basis: trialBalance.basis,
    generatedAt: new Date().toISOString(),
    requestedBy: payload.requestedBy,
    checks: {
      trialBalance: checksJson(trialBalance.checks),
      incomeStatement: checksJson(incomeStatement.checks),
      balanceSheet: checksJson(balanceSheet.checks),
    },
    files,
  };
  contents['manifest.json'] = strToU8(`${JSON.stringify(manifest, null, 2)}\n`);
  const archive = await renderer.zip(contents, new Date());
  return { from: incomeStatement.from, files, archive, sha256: sha256Hex(archive), checks: manifest.checks };
}

/**
 * The `reports.pack` job: renders the pack (its files on the renderer's threads) and stores it
 * with an audit event, once.
 */
export const reportPackJob = (renderer: ReportRenderer): JobKind<ReportPackPayload> => ({
  kind: reportPackKind,
  parsePayload,
  maxAttempts: reportPackLimits.maxAttempts,
  timeoutMs: reportPackLimits.timeoutMs,
  async run(context): Promise<JsonValue> {
    const { payload, job } = context;
    context.signal.throwIfAborted();
    const pack = await renderPack(context, renderer, payload);
    context.signal.throwIfAborted();
    await context.scopes.run(context.tenant, async (db) => {
      // A retried attempt after a committed one finds its pack there and writes nothing.
      const { rowCount } = await db.query(
        `insert into report_packs (tenant_id, entity_id, id, period_from, period_to, files, archive, archive_sha256,
                                   requested_by)
         values ($1, $2, $3, $4, $5, $6::jsonb, $7, decode($8, 'hex'), $9)
         on conflict (tenant_id, id) do nothing`,
        [
          db.tenantId,
          payload.entityId,
          job.id,
          pack.from,
          payload.to,
          JSON.stringify(pack.files),
          pack.archive,
          pack.sha256,
          payload.requestedBy,
        ],
      );
      if (rowCount === 1) {
        await recordAuditEvent(db, {
          action: 'reports.pack',
          entityId: payload.entityId,
          resource: { type: 'report_pack', id: formatId('job', job.id) },
          summary: { from: pack.from, to: payload.to, files: pack.files.length, sizeBytes: pack.archive.length },
        });
      }
    });
    const packId = formatId('job', job.id);
    const entity = formatId('entity', payload.entityId);
    const result: JsonValue = {
      packId,
      from: pack.from,
      to: payload.to,
      files: pack.files,
      sizeBytes: pack.archive.length,
      sha256: pack.sha256,
      checks: pack.checks,
      links: { archive: `/v1/entities/${entity}/report-packs/${packId}/archive` },
    };
    return result;
  },
});

export interface PackSummary {
  id: string;
  from: string;
  to: string;
  files: PackFile[];
  sizeBytes: number;
  sha256: string;
  requestedBy: string;
  createdAt: Date;
}

export interface PackPosition {
  createdAt: string;
  id: string;
}

interface PackRow {
  id: string;
  period_from: string;
  period_to: string;
  files: PackFile[];
  size_bytes: number;
  sha256: string;
  requested_by: string;
  created_at: Date;
  position: string;
}

/** Queues packs, lists them and hands out their archives, each in the caller's own tenant scope. */
export class ReportPacksService {
  readonly #scopes: TenantScopes;
  readonly #jobs: JobsService;

  constructor(scopes: TenantScopes, jobs: JobsService) {
    this.#scopes = scopes;
    this.#jobs = jobs;
  }

  /**
   * Queues a pack of the entity's statements. Errors: ENTITY_NOT_FOUND (also for an entity the
   * caller may not see), REPORT_RANGE_INVALID (a range that ends before it starts).
   */
  async queue(
    tenant: TenantContext,
    userId: string,
    request: { entityId: string; from: string | null; to: string; formats: PackFormat[]; requestedBy: string },
    idempotency: { key: string | undefined; route: string; body: unknown },
  ) {
    if (request.from !== null && request.from > request.to) {
      throw new AppError('REPORT_RANGE_INVALID', '"from" must not be after "to".');
    }
    // Refused now rather than by the job: the entity must be one the caller may see.
    await this.#scopes.runOne(tenant, (db) => loadBooks(db, request.entityId));
    const payload: ReportPackPayload = { ...request, formats: [...new Set(request.formats)] };
    return await this.#jobs.submitIdempotent(
      tenant,
      { kind: reportPackKind, payload: payload as unknown as JsonValue, createdBy: userId },
      { key: idempotency.key, route: idempotency.route, request: idempotency.body },
      renderAccepted,
    );
  }

  /**
   * The entity's packs, newest first, without their archives, a page at a time. Errors:
   * ENTITY_NOT_FOUND (also for an entity the caller may not see).
   */
  async list(
    tenant: TenantContext,
    entityId: string,
    after: PackPosition | null,
    limit: number,
  ): Promise<{ items: PackSummary[]; next: PackPosition | null }> {
    const rows = await this.#scopes.run(tenant, async (db) => {
      await loadBooks(db, entityId);
      const { rows } = await db.query<PackRow>(
        `select id, period_from::text as period_from, period_to::text as period_to, files,
                octet_length(archive) as size_bytes, encode(archive_sha256, 'hex') as sha256, requested_by,
                created_at, created_at::text as position
           from report_packs
          where entity_id = $1 and ($2::timestamptz is null or (created_at, id) < ($2::timestamptz, $3::uuid))
          order by created_at desc, id desc
          limit $4`,
        [entityId, after?.createdAt ?? null, after?.id ?? null, limit + 1],
      );
      return rows;
    });
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    return {
      items: page.map((row) => ({
        id: row.id,
        from: row.period_from,
        to: row.period_to,
        files: row.files,
        sizeBytes: row.size_bytes,
        sha256: row.sha256,
        requestedBy: row.requested_by,
        createdAt: row.created_at,
      })),
      next: rows.length > limit && last ? { createdAt: last.position, id: last.id } : null,
    };
  }

  /** The pack's archive. Errors: REPORT_PACK_NOT_FOUND (not made yet, another entity's, another firm's). */
  async archive(tenant: TenantContext, entityId: string, packId: string): Promise<{ to: string; archive: Buffer }> {
    const { rows } = await this.#scopes.run(tenant, (db) =>
      db.query<{ period_to: string; archive: Buffer }>(
        `select period_to::text as period_to, archive from report_packs where entity_id = $1 and id = $2`,
        [entityId, packId],
      ),
    );
    const row = rows[0];
    if (!row) throw new AppError('REPORT_PACK_NOT_FOUND');
    return { to: row.period_to, archive: row.archive };
  }
}
