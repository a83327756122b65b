import type { RateDecision } from './limits.types.ts';

/**
 * Cheap refusals for a caller that is certain to be refused. After a request is refused
 * because the bucket holds less than one token, or the quota is used up entirely, every
 * request of that caller until then would be refused too (no request costs less than one
 * token, and refusals take nothing). So the caller's credential — only ever recorded after
 * it was verified — maps to "refused until": a flood is answered before the token is
 * verified, the registry read or the store asked. Entries are held no longer than the plan
 * cache, so an operator's new plan applies within the same bound; the map is bounded.
 */
export interface Penalty {
  tenantId: string;
  outcome: 'rate_limited' | 'quota_exhausted';
  /** The plan's burst, for the RateLimit-Limit header. */
  burst: number;
  decidedAtMs: number;
  untilMs: number;
  decision: RateDecision;
}

export class PenaltyBox {
  readonly #entries = new Map<string, Penalty>();
  readonly #entriesMax: number;
  readonly #holdMsMax: number;

  constructor(entriesMax: number, holdMsMax: number) {
    this.#entriesMax = entriesMax;
    this.#holdMsMax = holdMsMax;
  }

  /** Records a refusal when it proves that every request will be refused for a while. */
  record(callerKey: string, tenantId: string, burst: number, decision: RateDecision, nowMs: number): void {
    let waitMs = 0;
    if (decision.outcome === 'rate_limited') waitMs = decision.nextTokenInMs;
    else if (decision.outcome === 'quota_exhausted' && decision.quotaUsed >= decision.quotaLimit)
      waitMs = decision.quotaResetInMs;
    if (waitMs <= 0 || decision.outcome === 'accepted') return;
    if (this.#entries.size >= this.#entriesMax) this.#sweep(nowMs);
    this.#entries.set(callerKey, {
      tenantId,
      outcome: decision.outcome,
      burst,
      decidedAtMs: nowMs,
      untilMs: nowMs + Math.min(waitMs, this.#holdMsMax),
      decision,
    });
  }

  /** The caller's standing refusal at `nowMs`, with the decision aged to now; null when none. */
  find(callerKey: string, nowMs: number): Penalty | null {
    const penalty = this.#entries.get(callerKey);
    if (penalty === undefined) return null;
    if (nowMs >= penalty.untilMs || nowMs < penalty.decidedAtMs) {
      this.#entries.delete(callerKey);
      return null;
    }
    const elapsedMs = nowMs - penalty.decidedAtMs;
    const { decision } = penalty;
    return {
      ...penalty,
      decision: {
        ...decision,
        bucketFullInMs: Math.max(0, decision.bucketFullInMs - elapsedMs),
        nextTokenInMs: Math.max(0, decision.nextTokenInMs - elapsedMs),
        quotaResetInMs: Math.max(0, decision.quotaResetInMs - elapsedMs),
        retryAfterMs: Math.max(1, decision.retryAfterMs - elapsedMs),
      },
    };
  }

  /** Forgets a tenant's entries, when its plan changes. */
  forgetTenant(tenantId: string): void {
    for (const [key, penalty] of this.#entries) if (penalty.tenantId === tenantId) this.#entries.delete(key);
  }

  #sweep(nowMs: number): void {
    for (const [key, penalty] of this.#entries) if (penalty.untilMs <= nowMs) this.#entries.delete(key);
    if (this.#entries.size >= this.#entriesMax) this.#entries.clear();
  }
}
