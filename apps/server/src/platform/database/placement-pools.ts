import pg from 'pg';
import type { Logger } from 'pino';
import { assert } from '../assert.ts';
import { AppError } from '../errors.ts';
import { lowerBackendPriority } from './backend-priority.ts';
import { sharedClusterName } from './clusters.ts';
import { logConnectionErrors } from './pool-errors.ts';
import type { RuntimePools, TenantPlacement } from './tenant-scope.ts';

/**
 * Routing (ARCHITECTURE.md 5): the runtime-role pool that serves a placement. Pooled tenants
 * share the one shared pool; each dedicated (bridge or silo) database gets its own small pool,
 * opened the first time a scope needs it and closed after it has been idle a while, so
 * hundreds of dedicated databases do not hold hundreds of idle pools. The number of pools
 * open at once is bounded: at the bound the least recently used pool with no connection
 * checked out is closed to make room; when every pool is busy the scope fails with
 * DATABASE_POOLS_EXHAUSTED (503) rather than exceeding the server's connection budget.
 *
 * `poolFor` is synchronous (creating a pg.Pool opens no connection), so the tenant scope's
 * gate and observer are unchanged by routing. Its caller checks a connection out in the same
 * tick (TenantScopes: `poolFor(placement).connect()`), and pg-pool counts that at once, as a
 * new client or a waiting request; so a pool is never closed under its caller, and one with
 * nothing checked out may be closed to make room the moment another placement needs it.
 *
 * Batch work (job handlers) reaches placements through `batch`: where the cluster directory
 * gives batch work a nice value (`batchNiceFor`: a server on this machine) each placement has a
 * second small pool whose backends run at that lower CPU priority (backend-priority.ts),
 * opened, evicted and closed together with the first; elsewhere batch work shares the
 * placement's one pool.
 */
export interface PlacementPoolSettings {
  /** Connections per dedicated-database pool. */
  poolMax: number;
  /** Dedicated-database pools open at once. */
  poolsMax: number;
  /** A pool unused for this long is closed by the sweeper. */
  idleCloseMs: number;
  connectionTimeoutMs: number;
  /** Connections in one placement's batch pool: the job slots of this process. */
  batchPoolMax: number;
}

/** Resolves a dedicated placement to its runtime-role URL, and its batch work's priority (the cluster directory). */
export interface PlacementUrls {
  runtimeUrlFor(placement: TenantPlacement): string;
  /** Nice value of batch connections' backends on this cluster; 0: batch work shares the placement's pool. */
  batchNiceFor(cluster: string): number;
}

/** The shared database's pools: the platform's runtime pool, and its batch twin when there is one. */
export interface SharedPools {
  pool: pg.Pool;
  batch: pg.Pool | null;
}

interface OpenPool {
  pool: pg.Pool;
  batch: pg.Pool | null;
  lastUsedMs: number;
}

function idle(pool: pg.Pool | null): boolean {
  return pool === null || (pool.totalCount === pool.idleCount && pool.waitingCount === 0);
}

export function placementKey(placement: TenantPlacement): string {
  return `${placement.cluster}/${placement.database}`;
}

export class PlacementPools implements RuntimePools {
  readonly #shared: SharedPools;
  readonly #urls: PlacementUrls;
  readonly #settings: PlacementPoolSettings;
  readonly #log: Logger;
  /** Insertion order is recency order: a hit moves the entry to the end. */
  readonly #open = new Map<string, OpenPool>();
  readonly #closing = new Set<Promise<void>>();
  #sweeper: NodeJS.Timeout | null = null;
  #opened = 0;

  /** Routing for batch work: the placement's low-priority pool where it has one. */
  readonly batch: RuntimePools = { poolFor: (placement) => this.#poolFor(placement, 'batch') };

  constructor(shared: SharedPools, urls: PlacementUrls, settings: PlacementPoolSettings, log: Logger) {
    assert(settings.poolMax >= 1 && settings.poolsMax >= 1, 'placement pools need room for one connection');
    assert(settings.batchPoolMax >= 1, 'batch pools need room for one connection');
    assert(settings.idleCloseMs >= 1, 'placement pools close after a positive idle time');
    this.#shared = shared;
    this.#urls = urls;
    this.#settings = settings;
    this.#log = log;
  }

  poolFor(placement: TenantPlacement): pg.Pool {
    return this.#poolFor(placement, 'interactive');
  }

  #poolFor(placement: TenantPlacement, lane: 'interactive' | 'batch'): pg.Pool {
    if (placement.model === 'pool') {
      assert(
        placement.cluster === sharedClusterName,
        `pooled tenants live on the shared cluster, not ${placement.cluster}`,
      );
      return lane === 'batch' ? (this.#shared.batch ?? this.#shared.pool) : this.#shared.pool;
    }
    const entry = this.#entryFor(placement);
    return lane === 'batch' ? (entry.batch ?? entry.pool) : entry.pool;
  }

  #entryFor(placement: TenantPlacement): OpenPool {
    const key = placementKey(placement);
    const nowMs = Date.now();
    const hit = this.#open.get(key);
    if (hit) {
      this.#open.delete(key);
      hit.lastUsedMs = nowMs;
      this.#open.set(key, hit);
      return hit;
    }
    if (this.#open.size >= this.#settings.poolsMax && !this.#evictOne()) {
      throw new AppError('DATABASE_POOLS_EXHAUSTED');
    }
    const url = this.#urls.runtimeUrlFor(placement);
    // Connections go first, the pool object after idleCloseMs (the sweeper).
    const pool = this.#newPool(key, url, this.#settings.poolMax, 10_000, 'countinghouse-runtime');
    let batch: pg.Pool | null = null;
    const batchNice = this.#urls.batchNiceFor(placement.cluster);
    if (batchNice > 0) {
      // An idle batch connection goes sooner: a paced job's next turn comes within about 2 s,
      // and batch connections left behind by jobs of many placements should not add up.
      batch = this.#newPool(key, url, this.#settings.batchPoolMax, 3_000, 'countinghouse-batch');
      lowerBackendPriority(batch, batchNice, this.#log);
    }
    const entry = { pool, batch, lastUsedMs: nowMs };
    this.#open.set(key, entry);
    this.#opened += 1;
    this.#startSweeper();
    return entry;
  }

  #newPool(key: string, url: string, max: number, idleMs: number, applicationName: string): pg.Pool {
    const pool = new pg.Pool({
      connectionString: url,
      max,
      connectionTimeoutMillis: this.#settings.connectionTimeoutMs,
      idleTimeoutMillis: Math.min(idleMs, this.#settings.idleCloseMs),
      application_name: applicationName,
    });
    logConnectionErrors(pool, this.#log, { placement: key });
    return pool;
  }

  /** Ends both of a placement's pools. */
  static async #end(entry: OpenPool): Promise<void> {
    await Promise.all([entry.pool.end(), entry.batch?.end()]);
  }

  /** Closes the least recently used pool with nothing checked out; false when all are busy. */
  #evictOne(): boolean {
    for (const [key, entry] of this.#open) {
      if (!idle(entry.pool) || !idle(entry.batch)) continue;
      this.#close(key, entry);
      return true;
    }
    return false;
  }

  #close(key: string, entry: OpenPool): void {
    this.#open.delete(key);
    const ending = PlacementPools.#end(entry).catch((error: unknown) => {
      this.#log.warn({ err: error, placement: key }, 'closing a placement pool failed');
    });
    this.#closing.add(ending);
    void ending.finally(() => this.#closing.delete(ending));
  }

  #startSweeper(): void {
    if (this.#sweeper !== null) return;
    const periodMs = Math.max(100, Math.min(10_000, Math.floor(this.#settings.idleCloseMs / 2)));
    this.#sweeper = setInterval(() => this.sweep(), periodMs);
    this.#sweeper.unref();
  }

  /** Closes pools idle longer than the setting; the timer calls it, tests may too. */
  sweep(nowMs: number = Date.now()): number {
    let closed = 0;
    for (const [key, entry] of this.#open) {
      if (nowMs - entry.lastUsedMs < this.#settings.idleCloseMs) continue;
      if (!idle(entry.pool) || !idle(entry.batch)) continue;
      this.#close(key, entry);
      closed += 1;
    }
    if (this.#open.size === 0 && this.#sweeper !== null) {
      clearInterval(this.#sweeper);
      this.#sweeper = null;
    }
    return closed;
  }

  /**
   * Closes the pool of one placement and waits for its connections to go: before a database
   * is dropped, renamed or frozen. The next scope on it opens a new pool.
   */
  async closePlacement(placement: TenantPlacement): Promise<void> {
    const key = placementKey(placement);
    const entry = this.#open.get(key);
    if (!entry) return;
    this.#open.delete(key);
    await PlacementPools.#end(entry);
  }

  stats(): { open: number; openedTotal: number; connections: number } {
    let connections = 0;
    for (const entry of this.#open.values()) connections += entry.pool.totalCount + (entry.batch?.totalCount ?? 0);
    return { open: this.#open.size, openedTotal: this.#opened, connections };
  }

  /** Ends every dedicated pool (the shared pools belong to the platform). */
  async close(): Promise<void> {
    if (this.#sweeper !== null) clearInterval(this.#sweeper);
    this.#sweeper = null;
    const entries = [...this.#open.values()];
    this.#open.clear();
    await Promise.all([...entries.map((entry) => PlacementPools.#end(entry)), ...this.#closing]);
  }
}
