import { assert } from '../platform/assert.ts';

interface Waiter {
  /** The cap the waiter asked under: it is granted only while fewer slots than this are held. */
  max: number;
  grant(): void;
  timer: NodeJS.Timeout;
}

interface Slots {
  held: number;
  waiters: Waiter[];
}

/**
 * Counting semaphores keyed by tenant, for bulkheads. `tryAcquire` never waits (in-flight
 * requests); `acquire` waits at most `waitMsMax` in a bounded FIFO queue (database
 * connections). A released slot passes straight to the oldest waiter, so a steady stream
 * of newcomers cannot starve it, unless the key now holds as many slots as that waiter's
 * cap (a cap may shrink while it waits: the fair share of busy moments); it is then kept
 * back until enough slots are released. Idle keys are forgotten.
 */
export class TenantSemaphores {
  readonly #slots = new Map<string, Slots>();

  held(key: string): number {
    return this.#slots.get(key)?.held ?? 0;
  }

  tryAcquire(key: string, max: number): boolean {
    const slots = this.#slotsOf(key);
    if (slots.held >= max || slots.waiters.length > 0) {
      this.#forgetIfIdle(key, slots);
      return false;
    }
    slots.held += 1;
    return true;
  }

  /** Resolves true with a slot held, or false when none came free in time or the queue is full. */
  async acquire(key: string, max: number, waitMsMax: number, waitersMax: number): Promise<boolean> {
    if (this.tryAcquire(key, max)) return true;
    const slots = this.#slotsOf(key);
    if (slots.waiters.length >= waitersMax) {
      this.#forgetIfIdle(key, slots);
      return false;
    }
    return await new Promise<boolean>((resolve) => {
      const waiter: Waiter = {
        max,
        grant: () => {
          clearTimeout(waiter.timer);
          resolve(true);
        },
        timer: setTimeout(() => {
          slots.waiters.splice(slots.waiters.indexOf(waiter), 1);
          this.#forgetIfIdle(key, slots);
          resolve(false);
        }, waitMsMax),
      };
      slots.waiters.push(waiter);
    });
  }

  release(key: string): void {
    const slots = this.#slots.get(key);
    assert(slots !== undefined && slots.held > 0, `release of a slot not held (${key})`);
    slots.held -= 1;
    const next = slots.waiters[0];
    if (next !== undefined && slots.held < next.max) {
      slots.waiters.shift();
      slots.held += 1;
      next.grant();
      return;
    }
    this.#forgetIfIdle(key, slots);
  }

  #slotsOf(key: string): Slots {
    let slots = this.#slots.get(key);
    if (slots === undefined) {
      slots = { held: 0, waiters: [] };
      this.#slots.set(key, slots);
    }
    return slots;
  }

  #forgetIfIdle(key: string, slots: Slots): void {
    if (slots.held === 0 && slots.waiters.length === 0) this.#slots.delete(key);
  }
}
