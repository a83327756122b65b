import { assert } from '../platform/assert.ts';

interface Entry<Value> {
  value: Value;
  expiresAtMs: number;
}

/**
 * Access tokens this instance verified recently, keyed by the token string, so a caller's
 * every request does not pay for an ES256 signature check (about 0.15 ms of the event loop
 * each; a flood of refused requests would pay it hundreds of times a second). An entry is
 * good until the token's own `exp` — without the clock tolerance the full check allows, so
 * a cached answer never outlives an uncached one — and `clear` forgets everything when the
 * signing keys change, so a retired key's tokens are checked (and refused) again. Least
 * recently used entries go first once `entriesMax` is reached.
 */
export class VerifiedTokenCache<Value> {
  readonly #entries = new Map<string, Entry<Value>>();
  readonly #entriesMax: number;
  /** Bumped by `clear`: a verification that began before it must not be remembered after it. */
  #generation = 0;

  constructor(entriesMax: number) {
    assert(Number.isInteger(entriesMax) && entriesMax >= 0, 'cache size must be a whole number');
    this.#entriesMax = entriesMax;
  }

  get generation(): number {
    return this.#generation;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The value remembered for `token`, or null when there is none or the token has expired at `nowMs`. */
  find(token: string, nowMs: number): Value | null {
    const entry = this.#entries.get(token);
    if (entry === undefined) return null;
    this.#entries.delete(token);
    if (nowMs >= entry.expiresAtMs) return null;
    // Re-inserted at the end: the Map's order is the recency order.
    this.#entries.set(token, entry);
    return entry.value;
  }

  /**
   * Remembers a verified token until `expiresAtMs`, unless the keys changed since its
   * verification began (`generation` read before it) or it has already expired.
   */
  remember(token: string, value: Value, expiresAtMs: number, generation: number, nowMs: number): void {
    if (this.#entriesMax === 0 || generation !== this.#generation || nowMs >= expiresAtMs) return;
    this.#entries.delete(token);
    while (this.#entries.size >= this.#entriesMax) {
      const oldest = this.#entries.keys().next();
      if (oldest.done) break;
      this.#entries.delete(oldest.value);
    }
    this.#entries.set(token, { value, expiresAtMs });
  }

  clear(): void {
    this.#generation += 1;
    this.#entries.clear();
  }
}
