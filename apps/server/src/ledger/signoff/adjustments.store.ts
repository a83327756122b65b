import type { TenantDb } from '../../platform/database/tenant-scope.ts';
import { newUuid } from '../../platform/ids.ts';
import type { LineInput } from '../ledger.types.ts';

/** Adjusting entries on their way to the journal, and the comments on them. */
export type AdjustmentStatus = 'draft' | 'submitted' | 'approved' | 'posted';

export interface DocumentReference {
  name: string;
  url: string;
}

export interface Adjustment {
  id: string;
  entityId: string;
  status: AdjustmentStatus;
  date: string;
  kind: 'adjusting' | 'reclassifying';
  memo: string;
  lines: LineInput[];
  documents: DocumentReference[];
  preparedBy: string;
  submittedAt: Date | null;
  approvedBy: string | null;
  approvedAt: Date | null;
  postedEntryId: string | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface Comment {
  id: string;
  author: string;
  body: string;
  createdAt: Date;
}

interface AdjustmentRow {
  id: string;
  entity_id: string;
  status: AdjustmentStatus;
  entry_date: string;
  kind: Adjustment['kind'];
  memo: string;
  lines: LineInput[];
  documents: DocumentReference[];
  prepared_by: string;
  submitted_at: Date | null;
  approved_by: string | null;
  approved_at: Date | null;
  posted_entry_id: string | null;
  created_at: Date;
  updated_at: Date;
}

const columns = `id, entity_id, status, entry_date::text as entry_date, kind, memo, lines, documents, prepared_by,
  submitted_at, approved_by, approved_at, posted_entry_id, created_at, updated_at`;

function fromRow(row: AdjustmentRow): Adjustment {
  return {
    id: row.id,
    entityId: row.entity_id,
    status: row.status,
    date: row.entry_date,
    kind: row.kind,
    memo: row.memo,
    lines: row.lines,
    documents: row.documents,
    preparedBy: row.prepared_by,
    submittedAt: row.submitted_at,
    approvedBy: row.approved_by,
    approvedAt: row.approved_at,
    postedEntryId: row.posted_entry_id,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export async function insertAdjustment(
  db: TenantDb,
  adjustment: Pick<Adjustment, 'entityId' | 'date' | 'kind' | 'memo' | 'lines' | 'documents' | 'preparedBy'>,
): Promise<Adjustment> {
  const { rows } = await db.query<AdjustmentRow>(
    `insert into adjustments (tenant_id, entity_id, id, status, entry_date, kind, memo, lines, documents, prepared_by)
     values ($1, $2, $3, 'draft', $4, $5, $6, $7, $8, $9) returning ${columns}`,
    [
      db.tenantId,
      adjustment.entityId,
      newUuid(),
      adjustment.date,
      adjustment.kind,
      adjustment.memo,
      JSON.stringify(adjustment.lines),
      JSON.stringify(adjustment.documents),
      adjustment.preparedBy,
    ],
  );
  const row = rows[0];
  if (!row) throw new Error('adjustment insert returned no row');
  return fromRow(row);
}

export async function findAdjustment(
  db: TenantDb,
  entityId: string,
  id: string,
  forUpdate: boolean,
): Promise<Adjustment | null> {
  const { rows } = await db.query<AdjustmentRow>(
    `select ${columns} from adjustments where entity_id = $1 and id = $2 ${forUpdate ? 'for update' : ''}`,
    [entityId, id],
  );
  return rows[0] ? fromRow(rows[0]) : null;
}

export async function listAdjustments(
  db: TenantDb,
  entityId: string,
  status: AdjustmentStatus | null,
): Promise<Adjustment[]> {
  const { rows } = await db.query<AdjustmentRow>(
    `select ${columns} from adjustments where entity_id = $1 and ($2::text is null or status = $2) order by id limit 1000`,
    [entityId, status],
  );
  return rows.map(fromRow);
}

export async function saveAdjustmentState(
  db: TenantDb,
  adjustment: Pick<Adjustment, 'entityId' | 'id' | 'status' | 'approvedBy' | 'postedEntryId'>,
): Promise<Adjustment> {
  const { rows } = await db.query<AdjustmentRow>(
    `update adjustments
        set status = $3, approved_by = $4, posted_entry_id = $5, updated_at = now(),
            submitted_at = case when $3 = 'submitted' then now() when $3 = 'draft' then null else submitted_at end,
            approved_at = case when $3 = 'approved' then now() when $3 in ('draft', 'submitted') then null else approved_at end
      where entity_id = $1 and id = $2 returning ${columns}`,
    [adjustment.entityId, adjustment.id, adjustment.status, adjustment.approvedBy, adjustment.postedEntryId],
  );
  const row = rows[0];
  if (!row) throw new Error('adjustment vanished inside its own transaction');
  return fromRow(row);
}

export async function insertComment(
  db: TenantDb,
  entityId: string,
  adjustmentId: string,
  author: string,
  body: string,
): Promise<void> {
  await db.query(
    `insert into adjustment_comments (tenant_id, entity_id, id, adjustment_id, author, body)
     values ($1, $2, $3, $4, $5, $6)`,
    [db.tenantId, entityId, newUuid(), adjustmentId, author, body],
  );
}

export async function listComments(db: TenantDb, adjustmentId: string): Promise<Comment[]> {
  const { rows } = await db.query<{ id: string; author: string; body: string; created_at: Date }>(
    'select id, author, body, created_at from adjustment_comments where adjustment_id = $1 order by created_at, id',
    [adjustmentId],
  );
  return rows.map((row) => ({ id: row.id, author: row.author, body: row.body, createdAt: row.created_at }));
}
