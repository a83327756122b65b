import { performance } from 'node:perf_hooks';
import { assert } from '../platform/assert.ts';

/** How batch work on this instance gave way to interactive requests (in the operator's view). */
export interface BatchYieldCounts {
  /** Non-batch requests in flight now. */
  interactiveInFlight: number;
  /** Batch transactions that found interactive requests in flight and waited. */
  batchWaits: number;
  /** Of those, the ones that went ahead at the bound without a lull. */
  batchWaitsTimedOut: number;
  /** Their total wait, in milliseconds. */
  batchWaitMs: number;
  /** Batch transactions that waited out the batch share (paced) while firms were using the instance. */
  batchPaced: number;
  /** Their total pacing wait, in milliseconds. */
  batchPacedMs: number;
  /** Firms are using another instance now (or the signal that tells is lost): batch work here is paced too. */
  firmsBusyElsewhere: boolean;
}

export interface BatchYieldSettings {
  /**
   * The share of the instance's time (1..100) that batch transactions may take while
   * interactive requests are coming in; 100 leaves batch work unpaced.
   */
  batchSharePercent: number;
  /** Interactive requests in flight or finished this recently make the instance busy. */
  busyWindowMs: number;
  /** A pacing wait is at most this long, however long the last batch transaction took. */
  paceWaitMsMax: number;
  /**
   * Whether firms used another instance within the window (interactive-signal.ts): batch work
   * here is then paced by the share as well. Lulls stay this instance's own.
   */
  busyElsewhere?: (windowMs: number) => boolean;
}

/**
 * Batch work gives way to interactive requests. Two mechanisms, both only while firms are
 * using the instance (a request in flight, or one within `busyWindowMs`) or, as another
 * instance announced, the deployment (`busyElsewhere`), so batch work runs flat out when
 * nobody is there and a separate worker process paces itself while firms use the API. Both
 * happen in `turn`, which the job worker's scope gate takes before each job transaction:
 *
 * - **Lulls**: a batch transaction starts at a moment with no interactive request
 *   in flight, waiting at most a bound, so it fills the gaps between requests.
 * - **A share**: batch transactions take turns one at a time, and after one that
 *   held its turn d ms the next starts d·(100/share − 1) ms later, so batch work takes about
 *   `batchSharePercent` of the instance's time. Each batch transaction that overlaps a
 *   request slows it (they share the cores and the event loop); the noisy-neighbour harness
 *   showed quiet firms' p99 falling as the share fell: with imports running throughout,
 *   about 1.95× their p99 alone unpaced, 1.75× at 25 %, 1.4× at 10 %. At 10 % a 5,000-row
 *   import took 9–12 s beside busy firms instead of 2 s, and runs at full speed once they stop.
 */
export class BatchYield {
  readonly #settings: BatchYieldSettings;
  #interactiveInFlight = 0;
  #lastInteractiveMs = Number.NEGATIVE_INFINITY;
  readonly #lullWaiters = new Set<() => void>();
  /** The paced turn: held by one batch transaction at a time while the instance is busy. */
  #turnHeld = false;
  readonly #turnWaiters: Array<() => void> = [];
  #nextTurnAtMs = 0;
  readonly #counts = { batchWaits: 0, batchWaitsTimedOut: 0, batchWaitMs: 0, batchPaced: 0, batchPacedMs: 0 };

  constructor(settings: BatchYieldSettings) {
    assert(
      Number.isInteger(settings.batchSharePercent) &&
        settings.batchSharePercent >= 1 &&
        settings.batchSharePercent <= 100,
      'batch share must be 1..100 percent',
    );
    this.#settings = settings;
  }

  /** An interactive request was admitted; returns its release, to call once when it ends. */
  interactiveStarted(): () => void {
    this.#interactiveInFlight += 1;
    this.#lastInteractiveMs = performance.now();
    let ended = false;
    return () => {
      assert(!ended, 'an interactive request ends once');
      ended = true;
      this.#interactiveInFlight -= 1;
      this.#lastInteractiveMs = performance.now();
      if (this.#interactiveInFlight === 0) for (const waiter of [...this.#lullWaiters]) waiter();
    };
  }

  /** True while firms are using the instance (a request in flight, or one within the busy window) or another one. */
  #busy(): boolean {
    return (
      this.#interactiveInFlight > 0 ||
      performance.now() - this.#lastInteractiveMs <= this.#settings.busyWindowMs ||
      this.#busyElsewhere()
    );
  }

  #busyElsewhere(): boolean {
    return this.#settings.busyElsewhere?.(this.#settings.busyWindowMs) ?? false;
  }

  /**
   * A batch transaction's turn, to take before it opens its transaction; returns the turn's
   * end, to call once when the transaction is over. On a quiet instance it passes at once. On
   * a busy one it waits for the turn (one at a time, first come first served), then for the
   * pace the previous turn set (the batch share), then for a lull of at most `lullWaitMsMax`.
   */
  async turn(lullWaitMsMax: number): Promise<() => void> {
    if (!this.#busy()) return () => {};
    const paced = this.#settings.batchSharePercent < 100;
    if (paced) {
      if (this.#turnHeld) await new Promise<void>((resolve) => this.#turnWaiters.push(resolve));
      this.#turnHeld = true;
      const paceMs = Math.min(this.#nextTurnAtMs - performance.now(), this.#settings.paceWaitMsMax);
      if (paceMs > 0 && this.#busy()) {
        await new Promise((resolve) => setTimeout(resolve, paceMs));
        this.#counts.batchPaced += 1;
        this.#counts.batchPacedMs += Math.round(paceMs);
      }
    }
    await this.#lull(lullWaitMsMax);
    const startedMs = performance.now();
    let ended = false;
    return () => {
      assert(!ended, 'a batch turn ends once');
      ended = true;
      if (!paced) return;
      const endedMs = performance.now();
      this.#nextTurnAtMs = endedMs + (endedMs - startedMs) * (100 / this.#settings.batchSharePercent - 1);
      const next = this.#turnWaiters.shift();
      if (next) next();
      else this.#turnHeld = false;
    };
  }

  /**
   * Resolves true at once when no interactive request is in flight, or as soon as the last
   * one finishes; false after `waitMsMax` without such a moment, so batch work fills the gaps
   * between interactive requests yet never starves under a steady stream of them.
   */
  async #lull(waitMsMax: number): Promise<boolean> {
    if (this.#interactiveInFlight === 0) return true;
    const startedMs = performance.now();
    const lull = await new Promise<boolean>((resolve) => {
      const waiter = () => {
        clearTimeout(timer);
        this.#lullWaiters.delete(waiter);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.#lullWaiters.delete(waiter);
        resolve(false);
      }, waitMsMax);
      this.#lullWaiters.add(waiter);
    });
    this.#counts.batchWaits += 1;
    if (!lull) this.#counts.batchWaitsTimedOut += 1;
    this.#counts.batchWaitMs += Math.round(performance.now() - startedMs);
    return lull;
  }

  counts(): BatchYieldCounts {
    return {
      interactiveInFlight: this.#interactiveInFlight,
      ...this.#counts,
      firmsBusyElsewhere: this.#busyElsewhere(),
    };
  }
}
