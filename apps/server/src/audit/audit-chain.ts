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
 * JSON with object keys sorted at every level; bigints as strings, dates as ISO text. Written
 * straight to text rather than through a key-sorted copy of the value for JSON.stringify: a
 * thousand-entry batch event digests every entry it posted, and the copy (an entries array, a
 * comparator sort and a new object per record) was the largest single cost of the server's
 * CPU profile for such a batch; this takes about a quarter less time and makes no garbage
 * objects. The text is byte for byte the copy's (audit-chain.test.ts compares them),
 * including where the copy's JSON.stringify put integer-like keys first in numeric order.
 */
export function canonicalJson(value: unknown): string {
  return canonicalText(value);
}

/** Text JSON writes as is between its quotes (no quote, backslash, control or surrogate). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what JSON escapes
const plainText = /^[^"\\\u0000-\u001f\ud800-\udfff]*$/;

function canonicalText(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  switch (typeof value) {
    case 'string':
      return plainText.test(value) ? `"${value}"` : JSON.stringify(value);
    case 'number':
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'bigint':
      return `"${value.toString()}"`;
    case 'object':
      break;
    default:
      assert(false, 'audit digests plain data only');
  }
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  if (Buffer.isBuffer(value)) return `"${value.toString('hex')}"`;
  if (Array.isArray(value)) {
    // An index loop, not map: a hole must read as undefined and be written as null.
    const items: string[] = [];
    for (let index = 0; index < value.length; index++) items.push(canonicalText(value[index]));
    return `[${items.join(',')}]`;
  }
  const record = value as Record<string, unknown>;
  const parts: string[] = [];
  for (const key of canonicalKeyOrder(Object.keys(record))) {
    const item = record[key];
    if (item !== undefined) parts.push(`${canonicalText(key)}:${canonicalText(item)}`);
  }
  return `{${parts.join(',')}}`;
}

const arrayIndexKey = /^(?:0|[1-9][0-9]*)$/;
const arrayIndexLimit = 2 ** 32 - 1;

function isArrayIndex(key: string): boolean {
  const first = key.charCodeAt(0);
  return first >= 48 && first <= 57 && arrayIndexKey.test(key) && Number(key) < arrayIndexLimit;
}

/**
 * Keys sorted by UTF-16 code units, except that integer-like keys (array indices) come first
 * in numeric order: the order a JavaScript object built from the sorted keys enumerates them.
 */
function canonicalKeyOrder(keys: string[]): string[] {
  keys.sort();
  if (!keys.some(isArrayIndex)) return keys;
  const indices = keys.filter(isArrayIndex);
  const named = keys.filter((key) => !isArrayIndex(key));
  return [...indices.sort((left, right) => Number(left) - Number(right)), ...named];
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
