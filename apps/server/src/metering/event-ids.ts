import { randomUUID } from 'node:crypto';

/**
 * Event ids for the hot path: UUIDv7 layout (48-bit millisecond time, version 7, variant
 * 10, 74 random bits), so `usage_events` inserts land near each other in the primary-key
 * index. The random part is the tail of `crypto.randomUUID()` (native, drawing on a pooled
 * entropy cache) and the time part is formatted once per millisecond: two small strings per
 * id, where building it from hex pieces made a dozen (the recording path's garbage was its
 * largest cost, measured). The `uuidv7` package costs several times more per id.
 */
let prefixMs = -1;
let prefix = '';

export function newEventId(nowMs: number = Date.now()): string {
  if (nowMs !== prefixMs) {
    const time = nowMs.toString(16).padStart(12, '0').slice(-12);
    prefix = `${time.slice(0, 8)}-${time.slice(8, 12)}-7`;
    prefixMs = nowMs;
  }
  // randomUUID() is xxxxxxxx-xxxx-4xxx-Vxxx-xxxxxxxxxxxx with V in 8..b: keep what follows the 4.
  return prefix + randomUUID().slice(15);
}
