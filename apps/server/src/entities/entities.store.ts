import type { TenantDb } from '../platform/database/tenant-scope.ts';
import type { Entity, EntityPage } from './entities.types.ts';

/**
 * Client entities in PostgreSQL. No query names a tenant: the scope's row-level security
 * supplies it, and inserts take the tenant id from the scope itself.
 */
interface EntityRow {
  id: string;
  name: string;
  legal_name: string | null;
  taxpayer_id_last4: string | null;
  entity_type: Entity['entityType'];
  base_currency: string;
  fiscal_year_end: string;
  status: Entity['status'];
  created_by: string;
  created_at: Date;
  updated_at: Date;
}

const columns =
  'id, name, legal_name, taxpayer_id_last4, entity_type, base_currency, fiscal_year_end, status, created_by, created_at, updated_at';

function fromRow(row: EntityRow): Entity {
  return {
    id: row.id,
    name: row.name,
    legalName: row.legal_name,
    taxpayerIdLast4: row.taxpayer_id_last4,
    entityType: row.entity_type,
    baseCurrency: row.base_currency,
    fiscalYearEnd: row.fiscal_year_end,
    status: row.status,
    createdBy: row.created_by,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export async function insertEntity(
  db: TenantDb,
  entity: Entity,
  taxpayerIdSealed: string | null,
): Promise<'inserted' | 'name_taken'> {
  const result = await db.query(
    `insert into entities (tenant_id, ${columns}, taxpayer_id_sealed)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12)
     on conflict (tenant_id, lower(name)) do nothing`,
    [
      db.tenantId,
      entity.id,
      entity.name,
      entity.legalName,
      entity.taxpayerIdLast4,
      entity.entityType,
      entity.baseCurrency,
      entity.fiscalYearEnd,
      entity.status,
      entity.createdBy,
      entity.createdAt,
      taxpayerIdSealed,
    ],
  );
  return result.rowCount === 1 ? 'inserted' : 'name_taken';
}

/**
 * Brings the planner's statistics of the entities table up to date once `rowsAdded` (the rows
 * a bulk load added since it last called this) reach autovacuum's threshold for the table
 * (migration 0028); returns whether it analyzed. Without it a firm's entity list is planned
 * for the table as the statistics last saw it, reading all of a large import's rows per page.
 */
export async function refreshEntityStatistics(db: TenantDb, rowsAdded: number): Promise<boolean> {
  // Nothing added is never stale: no round trip (an import's first batch, an import of duplicates).
  if (rowsAdded === 0) return false;
  const { rows } = await db.query<{ analyzed: boolean }>(
    `select refresh_table_statistics('entities', $1) as analyzed`,
    [rowsAdded],
  );
  return rows[0]?.analyzed === true;
}

/**
 * Inserts many entities with one statement, in list order; returns the ids inserted. An entity
 * whose name is taken — by an entity already there or by one earlier in the list — is skipped,
 * as insertEntity reports `name_taken`. Imports use it: one round trip per batch, not per row.
 */
export async function insertEntities(db: TenantDb, entities: readonly Entity[]): Promise<Set<string>> {
  if (entities.length === 0) return new Set();
  const column = <T>(pick: (entity: Entity) => T) => entities.map(pick);
  const { rows } = await db.query<{ id: string }>(
    `insert into entities (tenant_id, ${columns}, taxpayer_id_sealed)
     select $1, r.id, r.name, r.legal_name, r.taxpayer_id_last4, r.entity_type, r.base_currency,
            r.fiscal_year_end, r.status, r.created_by, r.created_at, r.created_at, null
       from unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
                   $9::text[], $10::uuid[], $11::timestamptz[])
            with ordinality as r(id, name, legal_name, taxpayer_id_last4, entity_type, base_currency,
                                 fiscal_year_end, status, created_by, created_at, position)
      order by r.position
     on conflict (tenant_id, lower(name)) do nothing
     returning id`,
    [
      db.tenantId,
      column((entity) => entity.id),
      column((entity) => entity.name),
      column((entity) => entity.legalName),
      column((entity) => entity.taxpayerIdLast4),
      column((entity) => entity.entityType),
      column((entity) => entity.baseCurrency),
      column((entity) => entity.fiscalYearEnd),
      column((entity) => entity.status),
      column((entity) => entity.createdBy),
      column((entity) => entity.createdAt),
    ],
  );
  return new Set(rows.map((row) => row.id));
}

export async function findEntity(db: TenantDb, id: string): Promise<Entity | null> {
  const { rows } = await db.query<EntityRow>(`select ${columns} from entities where id = $1`, [id]);
  return rows[0] ? fromRow(rows[0]) : null;
}

/** Keyset pagination on the time-ordered id: stable under concurrent inserts. */
export async function listEntities(db: TenantDb, afterId: string | null, limit: number): Promise<EntityPage> {
  const { rows } = await db.query<EntityRow>(
    `select ${columns} from entities
     where ($1::uuid is null or id > $1::uuid)
     order by id
     limit $2`,
    [afterId, limit + 1],
  );
  const items = rows.slice(0, limit).map(fromRow);
  const last = items.at(-1);
  return { items, nextAfterId: rows.length > limit && last ? last.id : null };
}

/** Applies changes; a taxpayer id arrives already sealed. Returns null when the name is taken. */
export async function updateEntity(
  db: TenantDb,
  id: string,
  changes: { name: string; legalName: string | null; status: Entity['status'] },
  taxpayer: { sealed: string | null; last4: string | null } | undefined,
): Promise<Entity | 'name_taken' | null> {
  try {
    const { rows } = await db.query<EntityRow>(
      `update entities set name = $2, legal_name = $3, status = $4, updated_at = now(),
              taxpayer_id_sealed = case when $5 then $6 else taxpayer_id_sealed end,
              taxpayer_id_last4 = case when $5 then $7 else taxpayer_id_last4 end
        where id = $1 returning ${columns}`,
      [
        id,
        changes.name,
        changes.legalName,
        changes.status,
        taxpayer !== undefined,
        taxpayer?.sealed ?? null,
        taxpayer?.last4 ?? null,
      ],
    );
    return rows[0] ? fromRow(rows[0]) : null;
  } catch (error) {
    if ((error as { code?: string }).code === '23505') return 'name_taken';
    throw error;
  }
}

export async function findEntityForUpdate(db: TenantDb, id: string): Promise<Entity | null> {
  const { rows } = await db.query<EntityRow>(`select ${columns} from entities where id = $1 for update`, [id]);
  return rows[0] ? fromRow(rows[0]) : null;
}
