import { createHash } from 'node:crypto';
import { assert } from '../platform/assert.ts';
import type { AuditContent, AuditEvent, AuditSummary, BrokenLink, ChainHead } from './audit.types.ts';

/**
 * The hash chain, as pure functions shared by the recorder and the verifier. Each event's
 * hash is sha256(prev_hash || content), where content is a canonical byte string built from
 * the stored columns; the first event of a tenant links to 32 zero bytes. The database
 * computes the same sha256 when it appends (audit.store.ts), so the chain needs no second
 * round trip, and the verifier recomputes it here from what it reads back.
 */
export const genesisHash: Buffer = Buffer.alloc(32, 0);

const contentVersion = 'countinghouse-audit-v1';

/**
 * JSON with object keys sorted at every level; bigints as strings, dates as ISO text. A copy
 * of the value with its keys set in sorted order goes to JSON.stringify. A thousand-entry batch
 * event digests every entry it posted, and building each copied object by assignment (one
 * shape shared by all entries, which JSON.stringify writes on its fast path) takes about half
 * the time of Object.fromEntries over a comparator-sorted entries list. The text is the same
 * (audit-chain.test.ts compares the two), integer-like keys first in numeric order included,
 * since that order comes from the object either way.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(canonicalValue(value));
}

function canonicalValue(value: unknown): unknown {
  if (value === null || value === undefined) return null;
  switch (typeof value) {
    case 'string':
    case 'number':
    case 'boolean':
      return value;
    case 'bigint':
      return value.toString();
    case 'object':
      break;
    default:
      assert(false, 'audit digests plain data only');
  }
  if (value instanceof Date) return value.toISOString();
  if (Buffer.isBuffer(value)) return value.toString('hex');
  if (Array.isArray(value)) {
    // An index loop, not map: a hole must read as undefined and be written as null.
    const items: unknown[] = new Array(value.length);
    for (let index = 0; index < value.length; index++) items[index] = canonicalValue(value[index]);
    return items;
  }
  const record = value as Record<string, unknown>;
  const copy: Record<string, unknown> = {};
  for (const key of Object.keys(record).sort()) {
    const item = record[key];
    if (item === undefined) continue;
    if (key === '__proto__') {
      // Assignment would set the copy's prototype; the key is an own property of the record.
      Object.defineProperty(copy, key, { value: canonicalValue(item), enumerable: true, writable: true });
    } else {
      copy[key] = canonicalValue(item);
    }
  }
  return copy;
}

export function sha256(bytes: Buffer | string): Buffer {
  return createHash('sha256').update(bytes).digest();
}

/** The digest of a record before or after a change; null when there is no such record. */
export function digestOf(value: unknown): Buffer | null {
  return value === undefined || value === null ? null : sha256(canonicalJson(value));
}

function summaryText(summary: AuditSummary | null): string | null {
  return summary === null ? null : canonicalJson(summary);
}

/** The bytes the chain hashes for one event: every stored column except seq and the hashes. */
export function canonicalContent(event: AuditContent): Buffer {
  return Buffer.from(
    JSON.stringify([
      contentVersion,
      event.id,
      event.tenantId,
      event.occurredAt.toISOString(),
      event.actor.kind,
      event.actor.id,
      event.action,
      event.entityId,
      event.resourceType,
      event.resourceId,
      event.requestId,
      event.sourceAddress,
      event.beforeDigest?.toString('hex') ?? null,
      event.afterDigest?.toString('hex') ?? null,
      summaryText(event.summary),
    ]),
    'utf8',
  );
}

export function chainHash(prevHash: Buffer, content: Buffer): Buffer {
  assert(prevHash.length === 32, 'a chain hash links to a 32-byte hash');
  return sha256(Buffer.concat([prevHash, content]));
}

/** Where a walk over one lane stands: the next seq expected and the hash it must link to. */
export interface ChainCursor {
  lane: number;
  expectedSeq: bigint;
  prevHash: Buffer;
  eventsChecked: number;
}

/** The start of a lane's walk; events checked count on from earlier lanes. */
export function laneStart(lane: number, eventsChecked: number): ChainCursor {
  return { lane, expectedSeq: 1n, prevHash: genesisHash, eventsChecked };
}

/**
 * The link problem of one event given the walk so far, or null when it links correctly.
 * `hashExists` tells whether some stored event has the given hash (for telling a row that
 * was moved from one that was removed); it is asked only when a link is already broken.
 */
export async function checkLink(
  cursor: ChainCursor,
  event: AuditEvent,
  hashExists: (hash: Buffer) => Promise<{ lane: number; seq: bigint } | null>,
): Promise<BrokenLink | null> {
  const { id, lane } = event;
  if (!chainHash(event.prevHash, canonicalContent(event)).equals(event.hash)) {
    return { lane, seq: event.seq, id, problem: 'altered', detail: 'the event no longer matches its hash' };
  }
  if (!event.prevHash.equals(cursor.prevHash)) {
    const movedFrom = await hashExists(event.prevHash);
    if (movedFrom !== null) {
      return {
        lane,
        seq: event.seq,
        id,
        problem: 'reordered',
        detail: `the event follows the event now at lane ${movedFrom.lane} seq ${movedFrom.seq}, not the one before it`,
      };
    }
    return {
      lane,
      seq: cursor.expectedSeq,
      id: null,
      problem: 'missing',
      detail: `the event before seq ${event.seq} is gone`,
    };
  }
  if (event.seq !== cursor.expectedSeq) {
    return {
      lane,
      seq: event.seq,
      id,
      problem: 'reordered',
      detail: `the event is linked in place of seq ${cursor.expectedSeq} but stored as seq ${event.seq}`,
    };
  }
  return null;
}

export function advance(cursor: ChainCursor, event: AuditEvent): ChainCursor {
  return { ...cursor, expectedSeq: event.seq + 1n, prevHash: event.hash, eventsChecked: cursor.eventsChecked + 1 };
}

/** After a lane's last event: the lane's recorded head must be exactly where the walk ended. */
export function checkHead(cursor: ChainCursor, head: ChainHead | null): BrokenLink | null {
  const { lane } = cursor;
  const lastSeq = cursor.expectedSeq - 1n;
  if (head === null) {
    if (lastSeq === 0n) return null;
    return { lane, seq: lastSeq, id: null, problem: 'missing', detail: 'the chain head is gone' };
  }
  if (head.seq > lastSeq) {
    return {
      lane,
      seq: lastSeq + 1n,
      id: null,
      problem: 'missing',
      detail: `the chain head is at seq ${head.seq} but the events end at seq ${lastSeq}`,
    };
  }
  if (!head.hash.equals(cursor.prevHash)) {
    return {
      lane,
      seq: head.seq,
      id: null,
      problem: 'altered',
      detail: 'the chain head does not match the last event',
    };
  }
  return null;
}
