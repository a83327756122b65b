import { assert } from '../platform/assert.ts';
import type { NamedStatement, TenantDb } from '../platform/database/tenant-scope.ts';
import { auditLimits } from './audit.limits.ts';
import type {
  AuditContent,
  AuditEvent,
  AuditEventFilter,
  AuditPosition,
  AuditSummary,
  ChainHead,
} from './audit.types.ts';
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
  lane: number;
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
    lane: row.lane,
  };
}

/**
 * The lane each open transaction already holds, keyed by its handle: a transaction that
 * records a second event links it into the same lane, so it never holds two lanes and two
 * writers can never wait on each other's lanes.
 */
const heldLanes = new WeakMap<AuditDb, number>();

/** The event's own columns are parameters $3..$15, after the tenant ($1) and its content ($2). */
const eventValues = `$3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15::jsonb`;

/** `head` is a CTE yielding the advanced lane, seq, prev_hash and hash; the event links to it. */
const insertLinkedEvent = `insert into audit_events (${eventColumns}, lane)
     select $1, head.seq, ${eventValues}, head.prev_hash, head.hash, head.lane
       from head
     returning lane, seq`;

/**
 * Appends events in order, linked into one of the tenant's lanes (migration 0014): the lane
 * this transaction already holds, else the first lane no other transaction holds (SKIP
 * LOCKED), else, when every lane is busy, a new lane up to the tenant's lane count, else it
 * waits for a random lane. The first event takes the lane in one statement; the others
 * follow in that lane in one more. Advancing a lane's head takes its row lock until the
 * transaction ends; a waiting append then re-reads the committed head (READ COMMITTED re-check
 * of ON CONFLICT DO UPDATE) and links to it. A rolled-back append leaves the head where it
 * was. The hash is computed by PostgreSQL's sha256 over the same bytes the verifier hashes.
 */
export async function appendAuditEvents(
  db: AuditDb,
  events: { event: AuditContent; content: Buffer }[],
): Promise<Linked[]> {
  if (events.length === 0) return [];
  let lane = heldLanes.get(db);
  const linked: Linked[] = [];
  let rest = events;
  if (lane === undefined) {
    const [first, ...others] = events;
    assert(first !== undefined, 'there is an event to append');
    const params = eventParams(db, first.event, first.content);
    const taken = (await appendToFreeLane(db, params)) ?? (await appendToAnyLane(db, params));
    lane = taken.lane;
    heldLanes.set(db, lane);
    linked.push(taken);
    rest = others;
  }
  if (rest.length > 0) linked.push(...(await appendToLane(db, rest, lane)));
  return linked;
}

function eventParams(db: AuditDb, event: AuditContent, content: Buffer): unknown[] {
  return [
    db.tenantId,
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
  ];
}

type Linked = { lane: number; seq: bigint };

function linkedOf(rows: { lane: number; seq: string }[]): Linked | null {
  const row = rows[0];
  return row ? { lane: row.lane, seq: BigInt(row.seq) } : null;
}

/** Links events into the lane this transaction holds, one step each, in one round trip (migration 0021). */
async function appendToLane(
  db: AuditDb,
  events: { event: AuditContent; content: Buffer }[],
  lane: number,
): Promise<Linked[]> {
  const column = <T>(pick: (event: AuditContent, content: Buffer) => T) =>
    events.map(({ event, content }) => pick(event, content));
  const { rows } = await db.query<{ linked_lane: number; linked_seq: string }>(
    `select linked_lane, linked_seq
       from audit_append_to_lane($1::uuid, $2::smallint, $3::bytea[], $4::uuid[], $5::timestamptz[], $6::text[],
                                 $7::text[], $8::text[], $9::uuid[], $10::text[], $11::text[], $12::text[],
                                 $13::text[], $14::bytea[], $15::bytea[], $16::jsonb[])`,
    [
      db.tenantId,
      lane,
      column((_, content) => content),
      column((event) => event.id),
      column((event) => event.occurredAt),
      column((event) => event.actor.kind),
      column((event) => event.actor.id),
      column((event) => event.action),
      column((event) => event.entityId),
      column((event) => event.resourceType),
      column((event) => event.resourceId),
      column((event) => event.requestId),
      column((event) => event.sourceAddress),
      column((event) => event.beforeDigest),
      column((event) => event.afterDigest),
      column((event) => (event.summary === null ? null : JSON.stringify(event.summary))),
    ],
  );
  assert(rows.length === events.length, `audit lane ${lane} linked every event`);
  return rows.map((row) => ({ lane: row.linked_lane, seq: BigInt(row.linked_seq) }));
}

/**
 * Nearly every audited change appends through this statement, so it is prepared once per
 * connection: planned afresh each time it cost more than it took to run.
 */
const appendToFreeLaneStatement: NamedStatement = {
  name: 'audit_append_to_free_lane',
  text: `with free as (
       select lane from audit_chain_heads
        where tenant_id = $1
        order by lane limit 1
        for update skip locked
     ), head as (
       update audit_chain_heads h set seq = h.seq + 1, prev_hash = h.hash, hash = sha256(h.hash || $2::bytea)
         from free
        where h.tenant_id = $1 and h.lane = free.lane
       returning h.lane, h.seq, h.prev_hash, h.hash
     )
     ${insertLinkedEvent}`,
};

/** Null when the tenant has no lane yet or every lane is held by another transaction. */
async function appendToFreeLane(db: AuditDb, params: unknown[]): Promise<Linked | null> {
  const { rows } = await db.query<{ lane: number; seq: string }>(appendToFreeLaneStatement, params);
  return linkedOf(rows);
}

async function appendToAnyLane(db: AuditDb, params: unknown[]): Promise<Linked> {
  const { rows } = await db.query<{ lane: number; seq: string }>(
    `with pick as (
       select (case when count(*) < $17 then count(*) else floor(random() * $17) end)::smallint as lane
         from audit_chain_heads where tenant_id = $1
     ), head as (
       insert into audit_chain_heads as h (tenant_id, lane, seq, prev_hash, hash)
       select $1, pick.lane, 1, $16::bytea, sha256($16::bytea || $2::bytea) from pick
       on conflict (tenant_id, lane) do update
         set seq = h.seq + 1, prev_hash = h.hash, hash = sha256(h.hash || $2::bytea)
       returning lane, seq, prev_hash, hash
     )
     ${insertLinkedEvent}`,
    [...params, genesisHash, auditLimits.lanesPerTenant],
  );
  const linked = linkedOf(rows);
  if (linked === null) throw new Error('the audit append linked no event');
  return linked;
}

/** Every lane's head, in lane order. */
export async function readChainHeads(db: AuditDb): Promise<ChainHead[]> {
  const { rows } = await db.query<{ lane: number; seq: string; hash: Buffer }>(
    'select lane, seq, hash from audit_chain_heads where tenant_id = $1 order by lane',
    [db.tenantId],
  );
  return rows.map((row) => ({ lane: row.lane, seq: BigInt(row.seq), hash: row.hash }));
}

/** The lanes that hold events (a loose index scan: one probe per lane, not per event). */
export async function readEventLanes(db: AuditDb): Promise<number[]> {
  const { rows } = await db.query<{ lane: number }>(
    `with recursive lanes as (
       select min(lane) as lane from audit_events where tenant_id = $1
       union all
       select (select min(e.lane) from audit_events e where e.tenant_id = $1 and e.lane > lanes.lane)
         from lanes where lanes.lane is not null
     )
     select lane from lanes where lane is not null`,
    [db.tenantId],
  );
  return rows.map((row) => row.lane);
}

/** Events of one lane with seq in (afterSeq, throughSeq], in chain order. */
export async function readChainPage(
  db: AuditDb,
  lane: number,
  afterSeq: bigint,
  throughSeq: bigint,
  limit: number,
): Promise<AuditEvent[]> {
  const { rows } = await db.query<EventRow>(
    `select ${eventColumns}, lane from audit_events
      where tenant_id = $1 and lane = $5 and seq > $2 and seq <= $3
      order by seq limit $4`,
    [db.tenantId, afterSeq.toString(), throughSeq.toString(), limit, lane],
  );
  return rows.map(eventOf);
}

/** Where the event holding this hash is, if any (only asked once a link is broken). */
export async function findEventByHash(db: AuditDb, hash: Buffer): Promise<{ lane: number; seq: bigint } | null> {
  const { rows } = await db.query<{ lane: number; seq: string }>(
    'select lane, seq from audit_events where tenant_id = $1 and hash = $2 limit 1',
    [db.tenantId, hash],
  );
  return rows[0] ? { lane: rows[0].lane, seq: BigInt(rows[0].seq) } : null;
}

/** Whether the log holds an event of this action on this resource (a retried append checks first). */
export async function hasEventOn(
  db: AuditDb,
  action: string,
  resource: { type: string; id: string },
): Promise<boolean> {
  const { rows } = await db.query(
    `select 1 from audit_events
      where tenant_id = $1 and action = $2 and resource_type = $3 and resource_id = $4
      limit 1`,
    [db.tenantId, action, resource.type, resource.id],
  );
  return rows.length > 0;
}

/** Events in time order (occurred_at, id), after a position, filtered. */
export async function listAuditEvents(
  db: AuditDb,
  filter: AuditEventFilter,
  after: AuditPosition | null,
  limit: number,
): Promise<AuditEvent[]> {
  const { rows } = await db.query<EventRow>(
    `select ${eventColumns}, lane from audit_events
      where tenant_id = $1
        and ($2::timestamptz is null or (occurred_at, id) > ($2::timestamptz, $10::uuid))
        and ($3::text is null or actor_id = $3)
        and ($4::text is null or action = $4)
        and ($9::text is null or starts_with(action, $9))
        and ($5::uuid is null or entity_id = $5)
        and ($6::timestamptz is null or occurred_at >= $6)
        and ($7::timestamptz is null or occurred_at < $7)
      order by occurred_at, id limit $8`,
    [
      db.tenantId,
      after?.occurredAt ?? null,
      filter.actorId ?? null,
      filter.action ?? null,
      filter.entityId ?? null,
      filter.from ?? null,
      filter.to ?? null,
      limit,
      filter.actionPrefix ?? null,
      after?.id ?? null,
    ],
  );
  return rows.map(eventOf);
}
