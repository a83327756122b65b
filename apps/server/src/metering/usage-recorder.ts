import type { Logger } from 'pino';
import { assert } from '../platform/assert.ts';
import { newEventId } from './event-ids.ts';
import { meteringLimits } from './metering.limits.ts';
import type { UsageStore } from './metering.store.ts';
import {
  isMetricCode,
  type UsageEvent,
  type UsageEventInput,
  type UsageObserver,
  type UsageProperties,
} from './metering.types.ts';

/**
 * The one entry point for usage: `recordUsage(event)` is synchronous and O(1) — it checks
 * the event, hands it to the observers (in-memory counters for /metrics and detection) and
 * appends it to a bounded buffer. A timer flushes the buffer every `flushIntervalMs` (and
 * early once `flushEarlyAtEvents` are waiting) in batches of `flushBatchEventsMax`; `close()`
 * flushes what is left. A crash loses at most the events of the last interval plus any
 * flush in progress: the window the operations docs state.
 *
 * When the database is down the batch goes back to the front of the buffer and is retried
 * on the next tick; when the buffer is full new events are dropped and counted
 * (`droppedEvents`), never blocking the request path.
 */
export interface RecorderStats {
  bufferedEvents: number;
  flushedEvents: number;
  duplicateEvents: number;
  droppedEvents: number;
  failedFlushes: number;
}

export interface RecorderOptions {
  bufferEventsMax?: number;
  flushIntervalMs?: number;
  flushEarlyAtEvents?: number;
  flushBatchEventsMax?: number;
}

/** Shared by every event recorded without properties (most of them): one object, not one each. */
const noProperties: UsageProperties = Object.freeze({});

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export class UsageRecorder {
  readonly #store: UsageStore;
  readonly #log: Logger;
  readonly #observers: UsageObserver[] = [];
  readonly #bufferEventsMax: number;
  readonly #flushIntervalMs: number;
  readonly #flushEarlyAtEvents: number;
  readonly #flushBatchEventsMax: number;
  #buffer: UsageEvent[] = [];
  #timer: NodeJS.Timeout | null = null;
  #flushing: Promise<void> | null = null;
  #closed = false;
  readonly #stats = { flushedEvents: 0, duplicateEvents: 0, droppedEvents: 0, failedFlushes: 0 };

  constructor(store: UsageStore, log: Logger, options: RecorderOptions = {}) {
    this.#store = store;
    this.#log = log;
    this.#bufferEventsMax = options.bufferEventsMax ?? meteringLimits.bufferEventsMax;
    this.#flushIntervalMs = options.flushIntervalMs ?? meteringLimits.flushIntervalMs;
    this.#flushEarlyAtEvents = options.flushEarlyAtEvents ?? meteringLimits.flushEarlyAtEvents;
    this.#flushBatchEventsMax = options.flushBatchEventsMax ?? meteringLimits.flushBatchEventsMax;
    assert(this.#flushBatchEventsMax >= 1 && this.#bufferEventsMax >= this.#flushBatchEventsMax, 'recorder bounds');
  }

  addObserver(observer: UsageObserver): void {
    this.#observers.push(observer);
  }

  /** Starts the periodic flush. The timer does not keep the process alive. */
  start(): void {
    assert(!this.#closed, 'recorder started after close');
    if (this.#timer !== null) return;
    this.#timer = setInterval(() => void this.flush(), this.#flushIntervalMs);
    this.#timer.unref();
  }

  /** Records one event; cheap and synchronous. A malformed event is a programmer error. */
  recordUsage(input: UsageEventInput): void {
    // Constant messages: a message built per call was garbage on every event of the hot path.
    assert(isMetricCode(input.metric), 'usage event metric is not in the catalogue');
    assert(Number.isSafeInteger(input.quantity), 'usage event quantity must be a safe integer');
    assert(input.quantity >= 0, 'usage event quantity must not be negative');
    // A length check on the hot path (as the tenant scope does); the column type checks the rest.
    assert(input.tenantId.length === 36, 'usage event needs a tenant uuid');
    assert(input.id === undefined || uuidPattern.test(input.id), 'usage event id must be a uuid');
    const properties = input.properties ?? noProperties;
    assert(
      properties === noProperties || Object.keys(properties).length <= meteringLimits.propertiesMax,
      'too many usage event properties',
    );
    const event: UsageEvent = {
      id: input.id ?? newEventId(),
      tenantId: input.tenantId,
      tier: input.tier,
      metric: input.metric,
      quantity: input.quantity,
      occurredAt: input.occurredAt ?? new Date(),
      properties,
    };
    for (const observer of this.#observers) observer.observe(event);
    if (this.#closed || this.#buffer.length >= this.#bufferEventsMax) {
      this.#stats.droppedEvents++;
      return;
    }
    this.#buffer.push(event);
    if (this.#buffer.length >= this.#flushEarlyAtEvents && this.#flushing === null) void this.flush();
  }

  stats(): RecorderStats {
    return { bufferedEvents: this.#buffer.length, ...this.#stats };
  }

  /** Writes everything buffered now, batch by batch; concurrent callers share one flush. */
  async flush(): Promise<void> {
    if (this.#flushing !== null) return await this.#flushing;
    this.#flushing = this.#drain().finally(() => {
      this.#flushing = null;
    });
    return await this.#flushing;
  }

  async #drain(): Promise<void> {
    while (this.#buffer.length > 0) {
      const batch = this.#buffer.slice(0, this.#flushBatchEventsMax);
      this.#buffer = this.#buffer.slice(batch.length);
      try {
        const inserted = await this.#store.insertEvents(batch);
        this.#stats.flushedEvents += inserted;
        this.#stats.duplicateEvents += batch.length - inserted;
      } catch (error) {
        this.#stats.failedFlushes++;
        this.#requeue(batch);
        this.#log.warn({ err: error, events: batch.length }, 'usage flush failed; will retry');
        return;
      }
    }
  }

  /** Puts a failed batch back in front, keeping within the bound (the oldest overflow is dropped). */
  #requeue(batch: UsageEvent[]): void {
    const room = this.#bufferEventsMax - this.#buffer.length;
    const kept = room >= batch.length ? batch : batch.slice(batch.length - Math.max(room, 0));
    this.#stats.droppedEvents += batch.length - kept.length;
    this.#buffer = kept.concat(this.#buffer);
  }

  /**
   * Graceful shutdown: stop the timer, refuse new events, flush until empty or the timeout.
   * Returns the events that could not be written (0 on a clean close).
   */
  async close(timeoutMs: number = meteringLimits.shutdownFlushTimeoutMs): Promise<number> {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    this.#closed = true;
    const deadline = Date.now() + timeoutMs;
    while (this.#buffer.length > 0 && Date.now() < deadline) {
      await this.flush();
      if (this.#buffer.length > 0) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const lost = this.#buffer.length;
    if (lost > 0) this.#log.error({ lostEvents: lost }, 'usage events lost at shutdown');
    this.#stats.droppedEvents += lost;
    this.#buffer = [];
    return lost;
  }
}
