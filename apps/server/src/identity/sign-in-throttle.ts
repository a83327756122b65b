import { identityLimits } from './identity.limits.ts';

/**
 * In-process failure counters for sign-in: per source address (a password-spraying client
 * is refused whatever account it tries), and per account name that has no user (so an
 * unknown email locks exactly like a real one and lockouts do not reveal which emails exist).
 * Real accounts also lock in the database (users.locked_until), shared by every instance.
 * Memory is bounded: the oldest window is dropped first when the table is full.
 */
export class FailureCounter {
  readonly #failuresMax: number;
  readonly #windowMs: number;
  readonly #entriesMax: number;
  readonly #now: () => number;
  readonly #entries = new Map<string, { failures: number; windowStartMs: number }>();

  constructor(failuresMax: number, windowMs: number, entriesMax: number, now: () => number = Date.now) {
    this.#failuresMax = failuresMax;
    this.#windowMs = windowMs;
    this.#entriesMax = entriesMax;
    this.#now = now;
  }

  /** Milliseconds until the key may try again, or 0 when it may try now. */
  blockedForMs(key: string): number {
    const entry = this.#entries.get(key);
    if (!entry) return 0;
    const elapsedMs = this.#now() - entry.windowStartMs;
    if (elapsedMs >= this.#windowMs) {
      this.#entries.delete(key);
      return 0;
    }
    return entry.failures >= this.#failuresMax ? this.#windowMs - elapsedMs : 0;
  }

  /** Counts a failure; returns true when this failure reached the limit. */
  fail(key: string): boolean {
    const nowMs = this.#now();
    let entry = this.#entries.get(key);
    if (!entry || nowMs - entry.windowStartMs >= this.#windowMs) {
      if (!entry && this.#entries.size >= this.#entriesMax) {
        const oldest = this.#entries.keys().next().value;
        if (oldest !== undefined) this.#entries.delete(oldest);
      }
      entry = { failures: 0, windowStartMs: nowMs };
      this.#entries.delete(key);
      this.#entries.set(key, entry);
    }
    entry.failures += 1;
    return entry.failures === this.#failuresMax;
  }

  clear(key: string): void {
    this.#entries.delete(key);
  }
}

export function addressThrottle(now?: () => number): FailureCounter {
  return new FailureCounter(
    identityLimits.addressFailuresMax,
    identityLimits.addressWindowSeconds * 1000,
    identityLimits.addressesTrackedMax,
    now,
  );
}

export function unknownAccountThrottle(now?: () => number): FailureCounter {
  return new FailureCounter(
    identityLimits.accountFailuresMax,
    identityLimits.accountLockoutSeconds * 1000,
    identityLimits.addressesTrackedMax,
    now,
  );
}
