import { randomFillSync } from 'node:crypto';

/**
 * Event ids for the hot path: UUIDv7 layout (48-bit millisecond time, version 7, variant
 * 10, 74 random bits), so `usage_events` inserts land near each other in the primary-key
 * index, but with the random bits taken from a pooled buffer refilled 4 KiB at a time
 * instead of one system call per id (the `uuidv7` package costs several times more per id).
 */
const poolBytes = 4_096;
const pool = Buffer.alloc(poolBytes);
let offset = poolBytes;
const hex = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, '0'));

export function newEventId(nowMs: number = Date.now()): string {
  if (offset + 10 > poolBytes) {
    randomFillSync(pool);
    offset = 0;
  }
  const r = (index: number) => pool[offset + index] ?? 0;
  const time = nowMs.toString(16).padStart(12, '0').slice(-12);
  const id = `${time.slice(0, 8)}-${time.slice(8, 12)}-7${hex[r(0) & 0x0f]?.[1]}${hex[r(1)]}-${hex[(r(2) & 0x3f) | 0x80]}${hex[r(3)]}-${hex[r(4)]}${hex[r(5)]}${hex[r(6)]}${hex[r(7)]}${hex[r(8)]}${hex[r(9)]}`;
  offset += 10;
  return id;
}
