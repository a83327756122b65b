import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { assert } from '../platform/assert.ts';
import type { CapturedChange } from './change-capture.ts';
import { tenantFilter } from './maintenance.ts';
import { tenantDataLimits } from './tenant-data.limits.ts';
import { columnList, keyList, quoteIdentifier, type TenantTable } from './tenant-tables.ts';

/**
 * The row-level work of a move, on clients already inside their transactions (maintenance.ts):
 * the bulk copy (COPY out of the source streamed into COPY in on the target), applying captured
 * changes (upsert what the source still has, delete what it no longer has), and the checksums
 * that verify both sides the same way.
 */

class RowCounter extends Transform {
  constructor(readonly onRows: (rows: number) => void) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    // COPY text format: one row per line, newlines inside values are escaped.
    let rows = 0;
    for (let index = chunk.indexOf(10); index !== -1; index = chunk.indexOf(10, index + 1)) rows += 1;
    if (rows > 0) this.onRows(rows);
    this.push(chunk);
    callback();
  }
}

/**
 * Streams the tenant's rows of one table from source to target; returns the rows copied.
 * PostgreSQL refuses COPY FROM into a table whose row-level security applies to the role (the
 * embedded owner is NOBYPASSRLS and the tables FORCE it), so rows land in a temporary table
 * first and move with one INSERT ... SELECT, which the tenant policy checks like any insert.
 */
export async function copyTable(
  source: pg.ClientBase,
  target: pg.ClientBase,
  table: TenantTable,
  tenantId: string,
  onRows: (rows: number) => void,
): Promise<number> {
  const columns = columnList(table);
  const stage = quoteIdentifier(`move_stage_${table.name}`);
  await target.query(`create temporary table ${stage} (like ${quoteIdentifier(table.name)}) on commit drop`);
  let copied = 0;
  const counter = new RowCounter((rows) => {
    copied += rows;
    onRows(rows);
  });
  await pipeline(
    source.query(
      copyTo(
        `copy (select ${columns} from ${quoteIdentifier(table.name)} where ${tenantFilter(table, tenantId)}) to stdout`,
      ),
    ),
    counter,
    target.query(copyFrom(`copy ${stage} (${columns}) from stdin`)),
  );
  const inserted = await target.query(
    `insert into ${quoteIdentifier(table.name)} (${columns}) select ${columns} from ${stage}`,
  );
  assert(inserted.rowCount === copied, `table ${table.name}: ${copied} rows staged, ${inserted.rowCount} inserted`);
  await target.query(`drop table ${stage}`);
  return copied;
}

export async function countRows(client: pg.ClientBase, table: TenantTable, tenantId: string): Promise<number> {
  const { rows } = await client.query<{ count: string }>(
    `select count(*) as count from ${quoteIdentifier(table.name)} where ${tenantFilter(table, tenantId)}`,
  );
  return Number(rows[0]?.count ?? 0);
}

export interface TableChecksum {
  rows: number;
  sum: string;
}

/**
 * Row count and an order-free checksum: the sum of the first 60 bits of md5 of each row's text,
 * with the columns named in one order on both sides and the session formats fixed
 * (maintenance.ts), so equal rows give equal sums on any two servers.
 */
export async function checksumTable(
  client: pg.ClientBase,
  table: TenantTable,
  tenantId: string,
): Promise<TableChecksum> {
  const { rows } = await client.query<{ rows: string; sum: string }>(
    `select count(*)::text as rows,
            coalesce(sum(('x' || substr(md5(row(${columnList(table)})::text), 1, 15))::bit(60)::bigint), 0)::text as sum
       from ${quoteIdentifier(table.name)} where ${tenantFilter(table, tenantId)}`,
  );
  const row = rows[0];
  assert(row !== undefined, 'checksum returned no row');
  return { rows: Number(row.rows), sum: row.sum };
}

function keyMatch(table: TenantTable, parameter: string): string {
  const keys = keyList(table);
  return `(${keys}) in (select ${keys} from jsonb_populate_recordset(null::${quoteIdentifier(table.name)}, ${parameter}::jsonb))`;
}

/** The source's current rows (as jsonb text) for the given keys. */
async function fetchRows(
  client: pg.ClientBase,
  table: TenantTable,
  tenantId: string,
  keys: readonly Record<string, unknown>[],
): Promise<string[]> {
  const { rows } = await client.query<{ row: string }>(
    `select to_jsonb(t)::text as row from ${quoteIdentifier(table.name)} t
      where ${tenantFilter(table, tenantId)} and ${keyMatch(table, '$1')}`,
    [JSON.stringify(keys)],
  );
  return rows.map((row) => row.row);
}

function upsertSql(table: TenantTable): string {
  const columns = columnList(table);
  const others = table.columns.filter((column) => !table.key.includes(column)).map(quoteIdentifier);
  const action =
    others.length === 0
      ? 'do nothing'
      : `do update set (${others.join(', ')}) = row(${others.map((column) => `excluded.${column}`).join(', ')})`;
  return `insert into ${quoteIdentifier(table.name)} (${columns})
          select ${columns} from jsonb_populate_recordset(null::${quoteIdentifier(table.name)}, $1::jsonb)
          on conflict (${keyList(table)}) ${action}`;
}

function keyOf(table: TenantTable, row: Record<string, unknown>): string {
  return JSON.stringify(table.key.map((column) => row[column]));
}

export interface AppliedChanges {
  upserted: number;
  deleted: number;
  /** Source rows as applied, per table, for the check after the final delta. */
  applied: Map<string, { upserts: string[]; deletes: Record<string, unknown>[] }>;
}

/**
 * Applies captured changes: for each changed key, the row as the source has it now (in the
 * source client's snapshot) replaces the target's, and a key the source no longer has is
 * deleted. Upserts go parents first and deletes children first, so foreign keys hold throughout.
 */
export async function applyChanges(
  source: pg.ClientBase,
  target: pg.ClientBase,
  tables: readonly TenantTable[],
  tenantId: string,
  changes: readonly CapturedChange[],
): Promise<AppliedChanges> {
  const result: AppliedChanges = { upserted: 0, deleted: 0, applied: new Map() };
  const byTable = new Map<string, Map<string, Record<string, unknown>>>();
  for (const change of changes) {
    const keys = byTable.get(change.table) ?? new Map<string, Record<string, unknown>>();
    keys.set(JSON.stringify(change.key), change.key);
    byTable.set(change.table, keys);
  }
  const pendingDeletes: Array<{ table: TenantTable; keys: Record<string, unknown>[] }> = [];
  for (const table of tables) {
    const keys = [...(byTable.get(table.name)?.values() ?? [])];
    const entry = { upserts: [] as string[], deletes: [] as Record<string, unknown>[] };
    for (let start = 0; start < keys.length; start += tenantDataLimits.catchUpBatchRows) {
      const batch = keys.slice(start, start + tenantDataLimits.catchUpBatchRows);
      const rows = await fetchRows(source, table, tenantId, batch);
      if (rows.length > 0) await target.query(upsertSql(table), [`[${rows.join(',')}]`]);
      const present = new Set(rows.map((row) => keyOf(table, JSON.parse(row) as Record<string, unknown>)));
      entry.upserts.push(...rows);
      entry.deletes.push(...batch.filter((key) => !present.has(keyOf(table, key))));
    }
    if (keys.length > 0) result.applied.set(table.name, entry);
    result.upserted += entry.upserts.length;
    if (entry.deletes.length > 0) pendingDeletes.push({ table, keys: entry.deletes });
  }
  for (const { table, keys } of pendingDeletes.reverse()) {
    const deleted = await target.query(
      `delete from ${quoteIdentifier(table.name)} where ${tenantFilter(table, tenantId)} and ${keyMatch(table, '$1')}`,
      [JSON.stringify(keys)],
    );
    result.deleted += deleted.rowCount ?? 0;
  }
  return result;
}

/** After the final delta: the target holds exactly the rows the source had for every changed key. */
export async function checkAppliedRows(
  target: pg.ClientBase,
  tables: readonly TenantTable[],
  tenantId: string,
  applied: AppliedChanges['applied'],
): Promise<void> {
  for (const table of tables) {
    const entry = applied.get(table.name);
    if (!entry) continue;
    const keys = [
      ...entry.upserts.map((row) => {
        const parsed = JSON.parse(row) as Record<string, unknown>;
        return Object.fromEntries(table.key.map((column) => [column, parsed[column]]));
      }),
      ...entry.deletes,
    ];
    const onTarget = await fetchRows(target, table, tenantId, keys);
    const expected = [...entry.upserts].sort();
    assert(
      JSON.stringify([...onTarget].sort()) === JSON.stringify(expected),
      `table ${table.name}: the target's changed rows differ from the source's after the final delta`,
    );
  }
}
