import type { TenantDb } from '../../platform/database/tenant-scope.ts';
import type { Entry, EntryClass, Line, PostingEntry } from '../ledger.types.ts';
import { normalizeRate } from '../money.ts';

/**
 * The journal in PostgreSQL. Posting is one call of a database function (migration 0010):
 * entries, lines, monthly and daily balances and, for an idempotent post, the key's record,
 * written with one statement each inside it, so a batch of a thousand entries costs the same
 * single round trip as one entry.
 */

/** The posting function's arrays, in its parameter order (entries, then lines). */
function postingArrays(entries: PostingEntry[]): unknown[] {
  const lines = entries.flatMap((entry, index) => entry.lines.map((line) => ({ position: index + 1, line })));
  return [
    entries.map((entry) => entry.id),
    entries.map((entry) => entry.date),
    entries.map((entry) => entry.kind),
    entries.map((entry) => entry.entryClass),
    entries.map((entry) => entry.memo),
    entries.map((entry) => entry.reversesId),
    entries.map((entry) => entry.allowInactive),
    lines.map(({ position }) => position),
    lines.map(({ line }) => line.lineNo),
    lines.map(({ line }) => line.accountId),
    lines.map(({ line }) => line.side),
    lines.map(({ line }) => line.amountMinor.toString()),
    lines.map(({ line }) => line.currency),
    lines.map(({ line }) => line.exponent),
    lines.map(({ line }) => line.memo),
    lines.map(({ line }) => line.exchangeRate),
    lines.map(({ line }) => (line.baseAmountMinor === null ? null : line.baseAmountMinor.toString())),
    lines.map(({ line }) => line.role),
  ];
}

const postingArrayTypes = [
  'uuid[]',
  'date[]',
  'text[]',
  'text[]',
  'text[]',
  'uuid[]',
  'boolean[]',
  'integer[]',
  'smallint[]',
  'uuid[]',
  'text[]',
  'bigint[]',
  'text[]',
  'smallint[]',
  'text[]',
  'numeric[]',
  'bigint[]',
  'text[]',
];

function placeholders(first: number): string {
  return postingArrayTypes.map((type, index) => `$${first + index}::${type}`).join(', ');
}

/**
 * Checks (write false) or posts (write true) entries; refusals come back as SQLSTATE CH005 with
 * the error code as message (see mapLedgerDatabaseErrors).
 */
export async function callPostEntries(
  db: TenantDb,
  entityId: string,
  userId: string | null,
  postedAt: Date,
  write: boolean,
  entries: PostingEntry[],
): Promise<void> {
  await db.query(`select ledger_post_entries($1::uuid, $2::uuid, $3::timestamptz, $4::boolean, ${placeholders(5)})`, [
    entityId,
    userId,
    postedAt,
    write,
    ...postingArrays(entries),
  ]);
}

export interface IdempotentPosting {
  key: string;
  route: string;
  requestHash: string;
  status: number;
  body: unknown;
  entityId: string;
  userId: string;
  postedAt: Date;
  entries: PostingEntry[];
}

/** Posts under an idempotency key, or returns the response stored under it. */
export async function callPostIdempotent(
  db: TenantDb,
  posting: IdempotentPosting,
): Promise<{ replayed: boolean; status: number; body: unknown }> {
  const { rows } = await db.query<{ replayed: boolean; response_status: number; response_body: unknown }>(
    `select replayed, response_status, response_body
       from ledger_post_idempotent($1::text, $2::text, $3::text, $4::integer, $5::jsonb, $6::uuid, $7::uuid,
                                   $8::timestamptz, ${placeholders(9)})`,
    [
      posting.key,
      posting.route,
      posting.requestHash,
      posting.status,
      JSON.stringify(posting.body),
      posting.entityId,
      posting.userId,
      posting.postedAt,
      ...postingArrays(posting.entries),
    ],
  );
  const row = rows[0];
  if (!row) throw new Error('the posting function returned no row');
  return { replayed: row.replayed, status: row.response_status, body: row.response_body };
}

export interface StoredResponse {
  requestHash: string;
  status: number;
  body: unknown;
}

/**
 * Takes the idempotency lock of every key, in key order, and returns the responses already
 * stored under them (migration 0020), keyed by key.
 */
export async function lockIdempotencyKeys(db: TenantDb, keys: string[]): Promise<Map<string, StoredResponse>> {
  const { rows } = await db.query<{
    stored_key: string;
    request_hash: string;
    response_status: number;
    response_body: unknown;
  }>('select stored_key, request_hash, response_status, response_body from ledger_lock_idempotency_keys($1::text[])', [
    keys,
  ]);
  return new Map(
    rows.map((row) => [
      row.stored_key,
      { requestHash: row.request_hash, status: row.response_status, body: row.response_body },
    ]),
  );
}

/** Stores the responses of posts made under their keys, in one statement. */
export async function insertIdempotentResponses(
  db: TenantDb,
  responses: { key: string; route: string; requestHash: string; status: number; body: unknown }[],
): Promise<void> {
  await db.query(
    `insert into idempotency_keys (tenant_id, key, route, request_hash, response_status, response_body)
     select $1::uuid, r.key, r.route, r.request_hash, r.status, r.body
       from unnest($2::text[], $3::text[], $4::text[], $5::integer[], $6::jsonb[])
              as r(key, route, request_hash, status, body)`,
    [
      db.tenantId,
      responses.map((response) => response.key),
      responses.map((response) => response.route),
      responses.map((response) => response.requestHash),
      responses.map((response) => response.status),
      responses.map((response) => JSON.stringify(response.body)),
    ],
  );
}

interface EntryRow {
  id: string;
  entity_id: string;
  entry_date: string;
  kind: Entry['kind'];
  entry_class: EntryClass;
  memo: string;
  reverses_id: string | null;
  reversed_by_id: string | null;
  created_by: string;
  posted_at: Date;
}

interface LineRow {
  entry_id: string;
  line_no: number;
  account_id: string;
  side: Line['side'];
  amount_minor: string;
  currency: string;
  currency_exponent: number;
  memo: string | null;
  exchange_rate: string | null;
  base_amount_minor: string | null;
  line_role: Line['role'];
}

const entrySelect = `select e.id, e.entity_id, e.entry_date::text as entry_date, e.kind, e.entry_class, e.memo,
       e.reverses_id, r.id as reversed_by_id, e.created_by, e.posted_at
  from journal_entries e
  left join journal_entries r on r.tenant_id = e.tenant_id and r.reverses_id = e.id`;

async function withLines(db: TenantDb, rows: EntryRow[]): Promise<Entry[]> {
  if (rows.length === 0) return [];
  const { rows: lineRows } = await db.query<LineRow>(
    `select entry_id, line_no, account_id, side, amount_minor::text as amount_minor, currency, currency_exponent, memo,
            exchange_rate::text as exchange_rate, base_amount_minor::text as base_amount_minor, line_role
       from journal_lines where entry_id = any($1::uuid[]) order by entry_id, line_no`,
    [rows.map((row) => row.id)],
  );
  const linesByEntry = new Map<string, Line[]>();
  for (const row of lineRows) {
    const lines = linesByEntry.get(row.entry_id) ?? [];
    lines.push({
      lineNo: row.line_no,
      accountId: row.account_id,
      side: row.side,
      amountMinor: BigInt(row.amount_minor),
      currency: row.currency,
      exponent: row.currency_exponent,
      memo: row.memo,
      exchangeRate: row.exchange_rate === null ? null : normalizeRate(row.exchange_rate),
      baseAmountMinor: row.base_amount_minor === null ? null : BigInt(row.base_amount_minor),
      role: row.line_role,
    });
    linesByEntry.set(row.entry_id, lines);
  }
  return rows.map((row) => ({
    id: row.id,
    entityId: row.entity_id,
    date: row.entry_date,
    kind: row.kind,
    entryClass: row.entry_class,
    memo: row.memo,
    reversesId: row.reverses_id,
    reversedById: row.reversed_by_id,
    createdBy: row.created_by,
    postedAt: row.posted_at,
    lines: linesByEntry.get(row.id) ?? [],
  }));
}

export async function findEntry(db: TenantDb, entityId: string, id: string): Promise<Entry | null> {
  const { rows } = await db.query<EntryRow>(`${entrySelect} where e.entity_id = $1 and e.id = $2`, [entityId, id]);
  return (await withLines(db, rows))[0] ?? null;
}

export interface EntryPosition {
  date: string;
  id: string;
}

/** Entries by date then id, keyset-paginated, optionally between two dates. */
export async function listEntries(
  db: TenantDb,
  entityId: string,
  range: { from: string | null; to: string | null },
  after: EntryPosition | null,
  limit: number,
): Promise<{ items: Entry[]; next: EntryPosition | null }> {
  const { rows } = await db.query<EntryRow>(
    `${entrySelect}
      where e.entity_id = $1
        and ($2::date is null or e.entry_date >= $2::date)
        and ($3::date is null or e.entry_date <= $3::date)
        and ($4::date is null or (e.entry_date, e.id) > ($4::date, $5::uuid))
      order by e.entry_date, e.id
      limit $6`,
    [entityId, range.from, range.to, after?.date ?? null, after?.id ?? null, limit + 1],
  );
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return {
    items: await withLines(db, page),
    next: rows.length > limit && last ? { date: last.entry_date, id: last.id } : null,
  };
}
