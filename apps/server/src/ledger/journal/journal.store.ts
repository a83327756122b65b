import type { TenantDb } from '../../platform/database/tenant-scope.ts';
import { monthOf } from '../dates.ts';
import type { Entry, EntryClass, Line, PreparedEntry } from '../ledger.types.ts';

/**
 * The journal in PostgreSQL: entries, their lines and the balances they move, written in one
 * transaction with one statement each (arrays through unnest), so a batch of a thousand
 * entries costs the same round trips as one.
 */

export async function insertEntries(
  db: TenantDb,
  entityId: string,
  createdBy: string,
  postedAt: Date,
  entries: PreparedEntry[],
): Promise<void> {
  await db.query(
    `insert into journal_entries
       (tenant_id, entity_id, id, entry_date, kind, entry_class, memo, reverses_id, line_count, created_by, posted_at)
     select $1, $2, e.id, e.entry_date, e.kind, e.entry_class, e.memo, e.reverses_id, e.line_count, $3, $11
       from unnest($4::uuid[], $5::date[], $6::text[], $7::text[], $8::text[], $9::uuid[], $10::int[])
         as e(id, entry_date, kind, entry_class, memo, reverses_id, line_count)`,
    [
      db.tenantId,
      entityId,
      createdBy,
      entries.map((entry) => entry.id),
      entries.map((entry) => entry.date),
      entries.map((entry) => entry.kind),
      entries.map((entry) => entry.entryClass),
      entries.map((entry) => entry.memo),
      entries.map((entry) => entry.reversesId),
      entries.map((entry) => entry.lines.length),
      postedAt,
    ],
  );
  const lines = entries.flatMap((entry) => entry.lines.map((line) => ({ entry, line })));
  await db.query(
    `insert into journal_lines (tenant_id, entity_id, entry_id, line_no, account_id, entry_date, entry_class,
                                side, amount_minor, currency, currency_exponent, memo)
     select $1, $2, l.*
       from unnest($3::uuid[], $4::smallint[], $5::uuid[], $6::date[], $7::text[], $8::text[], $9::bigint[],
                   $10::text[], $11::smallint[], $12::text[])
         as l(entry_id, line_no, account_id, entry_date, entry_class, side, amount_minor, currency, currency_exponent, memo)`,
    [
      db.tenantId,
      entityId,
      lines.map(({ entry }) => entry.id),
      lines.map(({ line }) => line.lineNo),
      lines.map(({ line }) => line.accountId),
      lines.map(({ entry }) => entry.date),
      lines.map(({ entry }) => entry.entryClass),
      lines.map(({ line }) => line.side),
      lines.map(({ line }) => line.amountMinor.toString()),
      lines.map(({ line }) => line.currency),
      lines.map(({ line }) => line.exponent),
      lines.map(({ line }) => line.memo),
    ],
  );
}

/** One balance row's increment: an account, currency, month, class and the shard chosen. */
export interface BalanceDelta {
  accountId: string;
  currency: string;
  month: string;
  entryClass: EntryClass;
  shard: number;
  debitMinor: bigint;
  creditMinor: bigint;
}

/**
 * Sums the entries' lines into balance increments, one per balance row, in a fixed order so
 * two postings lock shared rows in the same order and cannot deadlock. `shardOf` picks the
 * write-shard of an account for this transaction.
 */
export function balanceDeltas(entries: PreparedEntry[], shardOf: (accountId: string) => number): BalanceDelta[] {
  const deltas = new Map<string, BalanceDelta>();
  for (const entry of entries) {
    const month = monthOf(entry.date);
    for (const line of entry.lines) {
      const shard = shardOf(line.accountId);
      const key = `${line.accountId}|${line.currency}|${month}|${entry.entryClass}|${String(shard).padStart(2, '0')}`;
      let delta = deltas.get(key);
      if (!delta) {
        delta = {
          accountId: line.accountId,
          currency: line.currency,
          month,
          entryClass: entry.entryClass,
          shard,
          debitMinor: 0n,
          creditMinor: 0n,
        };
        deltas.set(key, delta);
      }
      if (line.side === 'debit') delta.debitMinor += line.amountMinor;
      else delta.creditMinor += line.amountMinor;
    }
  }
  return [...deltas.entries()].sort(([left], [right]) => (left < right ? -1 : 1)).map(([, delta]) => delta);
}

export async function applyBalanceDeltas(db: TenantDb, entityId: string, deltas: BalanceDelta[]): Promise<void> {
  await db.query(
    `insert into account_balances as b
       (tenant_id, entity_id, account_id, currency, period_month, entry_class, shard, debit_minor, credit_minor)
     select $1, $2, d.account_id, d.currency, d.period_month, d.entry_class, d.shard, d.debit_minor, d.credit_minor
       from unnest($3::uuid[], $4::text[], $5::date[], $6::text[], $7::smallint[], $8::bigint[], $9::bigint[])
         with ordinality as d(account_id, currency, period_month, entry_class, shard, debit_minor, credit_minor, position)
      order by d.position
     on conflict (tenant_id, entity_id, account_id, currency, period_month, entry_class, shard)
     do update set debit_minor = b.debit_minor + excluded.debit_minor,
                   credit_minor = b.credit_minor + excluded.credit_minor`,
    [
      db.tenantId,
      entityId,
      deltas.map((delta) => delta.accountId),
      deltas.map((delta) => delta.currency),
      deltas.map((delta) => delta.month),
      deltas.map((delta) => delta.entryClass),
      deltas.map((delta) => delta.shard),
      deltas.map((delta) => delta.debitMinor.toString()),
      deltas.map((delta) => delta.creditMinor.toString()),
    ],
  );
}

/** Months among `months` whose period is closed. */
export async function closedMonths(db: TenantDb, entityId: string, months: string[]): Promise<Set<string>> {
  const { rows } = await db.query<{ month: string }>(
    `select period_month::text as month from periods
      where entity_id = $1 and period_month = any($2::date[]) and status = 'closed'`,
    [entityId, months],
  );
  return new Set(rows.map((row) => row.month));
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
}

const entrySelect = `select e.id, e.entity_id, e.entry_date::text as entry_date, e.kind, e.entry_class, e.memo,
       e.reverses_id, r.id as reversed_by_id, e.created_by, e.posted_at
  from journal_entries e
  left join journal_entries r on r.tenant_id = e.tenant_id and r.reverses_id = e.id`;

async function withLines(db: TenantDb, rows: EntryRow[]): Promise<Entry[]> {
  if (rows.length === 0) return [];
  const { rows: lineRows } = await db.query<LineRow>(
    `select entry_id, line_no, account_id, side, amount_minor::text as amount_minor, currency, currency_exponent, memo
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
