import type { TenantDb } from '../platform/database/tenant-scope.ts';
import type { AuditContent, AuditEvent, AuditEventFilter, AuditSummary, ChainHead } from './audit.types.ts';
import { genesisHash } from './audit-chain.ts';

/** The statements of the audit log; every one names the tenant, so the owner role may run them too. */

/** Anything that runs a statement for one named tenant: a tenant scope or an owner transaction. */
export type AuditDb = Pick<TenantDb, 'tenantId' | 'query'>;

interface EventRow {
  tenant_id: string;
  seq: string;
  id: string;
  occurred_at: Date;
  actor_kind: AuditEvent['actor']['kind'];
  actor_id: string;
  action: string;
  entity_id: string | null;
  resource_type: string | null;
  resource_id: string | null;
  request_id: string | null;
  source_address: string | null;
  before_digest: Buffer | null;
  after_digest: Buffer | null;
  summary: AuditSummary | null;
  prev_hash: Buffer;
  hash: Buffer;
}

const eventColumns = `tenant_id, seq, id, occurred_at, actor_kind, actor_id, action, entity_id, resource_type,
  resource_id, request_id, source_address, before_digest, after_digest, summary, prev_hash, hash`;

function eventOf(row: EventRow): AuditEvent {
  return {
    tenantId: row.tenant_id,
    seq: BigInt(row.seq),
    id: row.id,
    occurredAt: row.occurred_at,
    actor: { kind: row.actor_kind, id: row.actor_id },
    action: row.action,
    entityId: row.entity_id,
    resourceType: row.resource_type,
    resourceId: row.resource_id,
    requestId: row.request_id,
    sourceAddress: row.source_address,
    beforeDigest: row.before_digest,
    afterDigest: row.after_digest,
    summary: row.summary,
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}

/**
 * Appends one event in a single statement. Advancing the tenant's chain head takes its row
 * lock, which a concurrent append of the same tenant waits for until this transaction ends;
 * it then re-reads the committed head (READ COMMITTED re-check of ON CONFLICT DO UPDATE) and
 * links to it. A rolled-back append leaves the head where it was. The hash is computed by
 * PostgreSQL's sha256 over the same bytes the verifier hashes.
 */
export async function appendAuditEvent(db: AuditDb, event: AuditContent, content: Buffer): Promise<bigint> {
  const { rows } = await db.query<{ seq: string }>(
    `with head as (
       insert into audit_chain_heads as h (tenant_id, seq, prev_hash, hash)
       values ($1, 1, $2::bytea, sha256($2::bytea || $3::bytea))
       on conflict (tenant_id) do update
         set seq = h.seq + 1, prev_hash = h.hash, hash = sha256(h.hash || $3::bytea)
       returning seq, prev_hash, hash
     )
     insert into audit_events (${eventColumns})
     select $1, head.seq, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16::jsonb, head.prev_hash, head.hash
       from head
     returning seq`,
    [
      db.tenantId,
      genesisHash,
      content,
      event.id,
      event.occurredAt,
      event.actor.kind,
      event.actor.id,
      event.action,
      event.entityId,
      event.resourceType,
      event.resourceId,
      event.requestId,
      event.sourceAddress,
      event.beforeDigest,
      event.afterDigest,
      event.summary === null ? null : JSON.stringify(event.summary),
    ],
  );
  return BigInt(rows[0]?.seq ?? '0');
}

export async function readChainHead(db: AuditDb): Promise<ChainHead | null> {
  const { rows } = await db.query<{ seq: string; hash: Buffer }>(
    'select seq, hash from audit_chain_heads where tenant_id = $1',
    [db.tenantId],
  );
  return rows[0] ? { seq: BigInt(rows[0].seq), hash: rows[0].hash } : null;
}

/** Events with seq in (afterSeq, throughSeq], in chain order. */
export async function readChainPage(
  db: AuditDb,
  afterSeq: bigint,
  throughSeq: bigint,
  limit: number,
): Promise<AuditEvent[]> {
  const { rows } = await db.query<EventRow>(
    `select ${eventColumns} from audit_events
      where tenant_id = $1 and seq > $2 and seq <= $3
      order by seq limit $4`,
    [db.tenantId, afterSeq.toString(), throughSeq.toString(), limit],
  );
  return rows.map(eventOf);
}

/** The seq of the event holding this hash, if any (only asked once a link is broken). */
export async function findSeqByHash(db: AuditDb, hash: Buffer): Promise<bigint | null> {
  const { rows } = await db.query<{ seq: string }>(
    'select seq from audit_events where tenant_id = $1 and hash = $2 limit 1',
    [db.tenantId, hash],
  );
  return rows[0] ? BigInt(rows[0].seq) : null;
}

export async function listAuditEvents(
  db: AuditDb,
  filter: AuditEventFilter,
  afterSeq: bigint,
  limit: number,
): Promise<AuditEvent[]> {
  const { rows } = await db.query<EventRow>(
    `select ${eventColumns} from audit_events
      where tenant_id = $1 and seq > $2
        and ($3::text is null or actor_id = $3)
        and ($4::text is null or action = $4)
        and ($9::text is null or starts_with(action, $9))
        and ($5::uuid is null or entity_id = $5)
        and ($6::timestamptz is null or occurred_at >= $6)
        and ($7::timestamptz is null or occurred_at < $7)
      order by seq limit $8`,
    [
      db.tenantId,
      afterSeq.toString(),
      filter.actorId ?? null,
      filter.action ?? null,
      filter.entityId ?? null,
      filter.from ?? null,
      filter.to ?? null,
      limit,
      filter.actionPrefix ?? null,
    ],
  );
  return rows.map(eventOf);
}
