import type pg from 'pg';
import { assert } from '../platform/assert.ts';

/**
 * The tenant's tables, found in the catalog rather than kept by hand, so a table added by a
 * later migration is exported, moved and purged without touching this code:
 *   - every table in the current schema with a `tenant_id` column (the tenant tables of
 *     0001_foundation.sql: RLS-forced, tenant_id leading every key);
 *   - every table with a `tenant` column (control-plane tables the metering domain keys by
 *     firm, 0008_metering.sql), except the lifecycle's own bookkeeping below.
 * Each comes with its columns (in catalog order), its primary key and the tables it refers to,
 * and the list is sorted parents first (foreign-key order) for inserts; purges walk it backwards.
 */
export interface TenantTable {
  name: string;
  /** The column naming the firm: `tenant_id` on tenant tables, `tenant` on control-plane tables. */
  tenantColumn: 'tenant_id' | 'tenant';
  columns: string[];
  /** Primary-key columns; empty when the table has none (only allowed on control-plane tables). */
  key: string[];
  /** Tables this one refers to with a foreign key (self-references left out). */
  parents: string[];
}

/**
 * Tenant tables that stay in the control database whatever the tenant's placement: the job
 * queue is claimed across tenants by the dispatcher on the control database, and the tier
 * change itself runs as one of these jobs. They are exported and purged, never moved.
 */
export const controlDatabaseTenantTables: ReadonlySet<string> = new Set(['jobs', 'job_attempts', 'job_tenants']);

/**
 * The lifecycle's own bookkeeping: not the firm's data, kept after a purge
 * (0012_lifecycle_move.sql; the provisioning state and step log of 0007_lifecycle.sql).
 */
export const lifecycleBookkeepingTables: ReadonlySet<string> = new Set([
  'tenant_provisioning',
  'tenant_provisioning_steps',
  'tenant_exports',
  'tenant_tier_changes',
  'tenant_moves_active',
  'tenant_move_changes',
]);

/**
 * Exported but kept by a purge, being the operator's own records rather than the firm's data
 * (docs/offboarding.md): imported AWS cost lines tagged with the firm, and the invoices the
 * operator issued to it (immutable, kept for the operator's books).
 */
export const retainedAfterPurgeTables: ReadonlySet<string> = new Set(['cost_import_lines', 'issued_invoices']);

interface CatalogRow {
  table_name: string;
  tenant_column: 'tenant_id' | 'tenant';
  columns: string[];
  key: string[] | null;
  parents: string[];
}

export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

export function quoteLiteral(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

/** Reads every tenant table of the connected database, parents first. */
export async function discoverTenantTables(client: pg.ClientBase | pg.Pool): Promise<TenantTable[]> {
  const { rows } = await client.query<CatalogRow>(`
    select c.relname::text as table_name,
           case when exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'tenant_id'
                               and a.attnum > 0 and not a.attisdropped)
                then 'tenant_id' else 'tenant' end as tenant_column,
           array(select a.attname::text from pg_attribute a
                  where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped and a.attgenerated = ''
                  order by a.attnum) as columns,
           (select array(select a.attname::text from unnest(i.indkey) with ordinality k(attnum, position)
                           join pg_attribute a on a.attrelid = c.oid and a.attnum = k.attnum
                          order by k.position)
              from pg_index i where i.indrelid = c.oid and i.indisprimary) as key,
           array(select distinct p.relname::text from pg_constraint f join pg_class p on p.oid = f.confrelid
                  where f.conrelid = c.oid and f.contype = 'f' and f.confrelid <> c.oid) as parents
      from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where n.nspname = current_schema() and c.relkind in ('r', 'p') and not c.relispartition
       and exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
                     and a.attname in ('tenant_id', 'tenant') and a.atttypid = 'uuid'::regtype)
     order by c.relname`);
  const tables = rows
    .filter((row) => !lifecycleBookkeepingTables.has(row.table_name))
    .map((row) => ({
      name: row.table_name,
      tenantColumn: row.tenant_column,
      columns: row.columns,
      key: row.key ?? [],
      parents: row.parents,
    }));
  for (const table of tables) {
    assert(
      table.tenantColumn === 'tenant' || table.key[0] === 'tenant_id',
      `tenant table ${table.name} must lead its primary key with tenant_id`,
    );
  }
  return parentsFirst(tables);
}

/** Topological order by foreign keys; parents outside the list (e.g. `tenants`) are ignored. */
export function parentsFirst(tables: readonly TenantTable[]): TenantTable[] {
  const byName = new Map(tables.map((table) => [table.name, table]));
  const ordered: TenantTable[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (table: TenantTable, path: string[]): void => {
    const seen = state.get(table.name);
    if (seen === 'done') return;
    assert(seen !== 'visiting', `foreign keys form a cycle: ${[...path, table.name].join(' -> ')}`);
    state.set(table.name, 'visiting');
    for (const parent of table.parents) {
      const parentTable = byName.get(parent);
      if (parentTable) visit(parentTable, [...path, table.name]);
    }
    state.set(table.name, 'done');
    ordered.push(table);
  };
  for (const table of tables) visit(table, []);
  return ordered;
}

/** The tables whose rows live in the tenant's placement and move with it. */
export function placementTables(tables: readonly TenantTable[]): TenantTable[] {
  return tables.filter((table) => table.tenantColumn === 'tenant_id' && !controlDatabaseTenantTables.has(table.name));
}

/** The tables that stay in the control database: the job queue and the metering tables. */
export function controlTables(tables: readonly TenantTable[]): TenantTable[] {
  return tables.filter((table) => table.tenantColumn === 'tenant' || controlDatabaseTenantTables.has(table.name));
}

export function columnList(table: TenantTable): string {
  return table.columns.map(quoteIdentifier).join(', ');
}

export function keyList(table: TenantTable): string {
  return table.key.map(quoteIdentifier).join(', ');
}
