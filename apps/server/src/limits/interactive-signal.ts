import { performance } from 'node:perf_hooks';
import pg from 'pg';
import type { Logger } from 'pino';
import { assert } from '../platform/assert.ts';
import type { LimitsAlert } from './limits.types.ts';

/** The notification channel, in the control database every instance and worker shares. */
export const interactiveChannel = 'countinghouse_interactive';

export interface InteractiveSignalOptions {
  /** The control database (the owner's URL): every instance and worker of a deployment shares it. */
  connectionString: string;
  /** Where announcements are sent from (the control pool). */
  announcer: Pick<pg.Pool, 'query'>;
  /** This process's own id; its own announcements are ignored. */
  instanceId: string;
  log: Logger;
  /** At most one announcement per this interval while firms use the instance. */
  announceEveryMs: number;
  /** Reconnection backoff of the listening connection: doubles from 1 s up to this. */
  reconnectMsMax: number;
  /** Tests: a channel of their own, so that other instances on the test database do not reach them. */
  channel?: string;
}

const reconnectMsMin = 1_000;

/**
 * Firms using other instances of the deployment, for batch work to give way to (batch-yield.ts).
 * Batch work yields to interactive requests on its own instance; a job worker in a process of
 * its own (`countinghouse worker`) serves no requests, so on its own it would see no firm and
 * run flat out against the database the firms' requests use. So each instance that admits an
 * interactive request announces it with a PostgreSQL notification on the control database, at
 * most once per `announceEveryMs`, and each process listens on one connection of its own: batch
 * work anywhere counts firms as busy while another instance announced within the busy window.
 * PostgreSQL rather than Redis because every deployment has it, the embedded one included.
 *
 * Fail-safe: while the listening connection is down, firms count as busy elsewhere — batch
 * work is paced, never let loose by a lost signal — and the INTERACTIVE_SIGNAL_LOST alert is
 * raised until it is back; it reconnects with backoff.
 */
export class InteractiveSignal {
  readonly #options: InteractiveSignalOptions;
  readonly #log: Logger;
  #client: pg.Client | null = null;
  #listening = false;
  #lost: LimitsAlert | null = null;
  #lastAnnouncedMs = Number.NEGATIVE_INFINITY;
  #lastHeardMs = Number.NEGATIVE_INFINITY;
  #announceFailedLogged = false;
  #reconnectMs = reconnectMsMin;
  #reconnectTimer: NodeJS.Timeout | null = null;
  #closed = false;
  readonly #channel: string;

  constructor(options: InteractiveSignalOptions) {
    this.#options = options;
    this.#channel = options.channel ?? interactiveChannel;
    assert(/^[a-z_][a-z0-9_]*$/.test(this.#channel), 'a notification channel is a plain identifier');
    this.#log = options.log.child({ component: 'interactive-signal' });
  }

  /** Starts listening; resolves once the first attempt has connected or failed (then it retries). */
  async start(): Promise<void> {
    await this.#connect();
  }

  /** A firm's interactive request was admitted here: tells the other instances, at most once per interval. */
  announce(): void {
    const nowMs = performance.now();
    if (nowMs - this.#lastAnnouncedMs < this.#options.announceEveryMs) return;
    this.#lastAnnouncedMs = nowMs;
    this.#options.announcer.query('select pg_notify($1, $2)', [this.#channel, this.#options.instanceId]).then(
      () => {
        this.#announceFailedLogged = false;
      },
      (error: unknown) => {
        // Fire and forget: a lost announcement leaves other instances' batch work unpaced
        // for one window at most, and the request path never waits on it.
        if (!this.#announceFailedLogged) this.#log.warn({ err: error }, 'could not announce interactive load');
        this.#announceFailedLogged = true;
      },
    );
  }

  /** True while another instance announced within `windowMs`, or while the signal is lost. */
  busyElsewhere(windowMs: number): boolean {
    return !this.#listening || performance.now() - this.#lastHeardMs <= windowMs;
  }

  alerts(): LimitsAlert[] {
    return this.#lost === null ? [] : [this.#lost];
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#reconnectTimer) clearTimeout(this.#reconnectTimer);
    const client = this.#client;
    this.#client = null;
    this.#listening = false;
    await client?.end().catch(() => {});
  }

  async #connect(): Promise<void> {
    if (this.#closed) return;
    const client = new pg.Client({
      connectionString: this.#options.connectionString,
      // Names the instance in pg_stat_activity.
      application_name: `countinghouse-signal-${this.#options.instanceId}`.slice(0, 63),
    });
    client.on('notification', (message) => {
      if (message.channel === this.#channel && message.payload !== this.#options.instanceId) {
        this.#lastHeardMs = performance.now();
      }
    });
    // An error on an idle connection arrives here, and 'end' follows it.
    client.on('error', (error) => this.#lose(client, error));
    client.on('end', () => this.#lose(client, new Error('the listening connection ended')));
    this.#client = client;
    try {
      await client.connect();
      await client.query(`listen ${this.#channel}`);
    } catch (error) {
      this.#lose(client, error);
      return;
    }
    if (this.#closed || this.#client !== client) return;
    this.#listening = true;
    this.#reconnectMs = reconnectMsMin;
    if (this.#lost !== null) this.#log.info('interactive load signal restored');
    this.#lost = null;
  }

  #lose(client: pg.Client, error: unknown): void {
    if (this.#closed || this.#client !== client) return;
    this.#client = null;
    this.#listening = false;
    client.end().catch(() => {});
    if (this.#lost === null) {
      const message = `The interactive load signal is lost (${error instanceof Error ? error.message : String(error)}); batch work is paced as if firms were busy until it is back.`;
      this.#lost = { code: 'INTERACTIVE_SIGNAL_LOST', message, since: new Date() };
      this.#log.error({ err: error, alert: this.#lost.code }, 'interactive load signal lost');
    }
    const delayMs = this.#reconnectMs;
    this.#reconnectMs = Math.min(this.#reconnectMs * 2, this.#options.reconnectMsMax);
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = null;
      void this.#connect();
    }, delayMs);
    this.#reconnectTimer.unref();
  }
}
