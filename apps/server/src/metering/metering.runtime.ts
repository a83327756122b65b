import type { Logger } from 'pino';
import type { ScopeObserver, TenantContext, TenantScopes } from '../platform/database/tenant-scope.ts';
import { CpuApportioner } from './cpu-apportioner.ts';
import { EmfSink } from './emf-sink.ts';
import { meteringLimits } from './metering.limits.ts';
import type { UsageStore } from './metering.store.ts';
import type { UsageEventInput } from './metering.types.ts';
import { NoisyNeighbourDetector } from './noisy-neighbour.ts';
import type { RouteClass } from './request-metering.plugin.ts';
import { StorageSampler } from './storage-sampler.ts';
import { UsageMetrics } from './usage-metrics.ts';
import { type RecorderOptions, UsageRecorder } from './usage-recorder.ts';

export interface MeteringSettings {
  /** Per-tenant Prometheus series for the top N consumers (COUNTINGHOUSE_METRICS_TOP_TENANTS). */
  metricsTopTenants: number;
  /** Write CloudWatch EMF lines (COUNTINGHOUSE_METRICS_EMF=on). */
  emf: boolean;
  /** Storage sampler period (COUNTINGHOUSE_STORAGE_SAMPLE_MINUTES); 0 turns the timer off. */
  storageSampleIntervalMs: number;
  recorder?: RecorderOptions;
  emfWrite?: (line: string) => void;
}

/**
 * The running metering machinery of one process: the recorder (the one entry point,
 * `recordUsage`), its observers (Prometheus counters, noisy-neighbour detection, the
 * optional EMF sink), the CPU apportioner, the database-time observer of the tenant scope,
 * and the storage sampler. One tick per flush interval closes the CPU window and the
 * detector's minute and writes the EMF lines.
 */
export class Metering {
  readonly recorder: UsageRecorder;
  readonly metrics: UsageMetrics;
  readonly detector: NoisyNeighbourDetector;
  readonly cpu = new CpuApportioner();
  readonly emf: EmfSink | null;
  readonly scopeObserver: ScopeObserver;
  #sampler: StorageSampler | null = null;
  #timer: NodeJS.Timeout | null = null;
  readonly #settings: MeteringSettings;
  readonly #log: Logger;

  constructor(store: UsageStore, log: Logger, settings: MeteringSettings) {
    this.#settings = settings;
    this.#log = log;
    this.recorder = new UsageRecorder(store, log, settings.recorder);
    this.metrics = new UsageMetrics(settings.metricsTopTenants, () => this.recorder.stats());
    this.detector = new NoisyNeighbourDetector(log);
    this.recorder.addObserver(this.metrics);
    this.recorder.addObserver(this.detector);
    this.emf = settings.emf ? new EmfSink(settings.emfWrite) : null;
    if (this.emf) this.recorder.addObserver(this.emf);
    const recorder = this.recorder;
    this.scopeObserver = {
      scopeFinished(tenant: TenantContext, durationUs: number) {
        recorder.recordUsage({
          tenantId: tenant.tenantId,
          tier: tenant.tier,
          metric: 'database_us',
          quantity: durationUs,
        });
      },
    };
  }

  /** The single entry point for producers on other branches (jobs, rate limits, identity). */
  recordUsage(event: UsageEventInput): void {
    this.recorder.recordUsage(event);
  }

  recordRequest(tenant: TenantContext, request: { routeClass: RouteClass; status: number; durationUs: number }): void {
    this.recorder.recordUsage({
      tenantId: tenant.tenantId,
      tier: tenant.tier,
      metric: 'requests',
      quantity: 1,
      properties: { routeClass: request.routeClass, status: request.status, durationUs: request.durationUs },
    });
    this.cpu.addRequest(tenant.tenantId, tenant.tier, request.durationUs);
  }

  /** Starts the flush timer, the tick and (with a store-backed sampler) storage sampling. */
  start(samplerScopes: TenantScopes, store: UsageStore): void {
    this.#sampler = new StorageSampler(store, samplerScopes, this.recorder, this.#log);
    if (this.#settings.storageSampleIntervalMs > 0) this.#sampler.start(this.#settings.storageSampleIntervalMs);
    this.recorder.start();
    const intervalMs = this.#settings.recorder?.flushIntervalMs ?? meteringLimits.flushIntervalMs;
    this.#timer = setInterval(() => this.tick(), intervalMs);
    this.#timer.unref();
  }

  get sampler(): StorageSampler {
    if (this.#sampler === null) throw new Error('metering is not started');
    return this.#sampler;
  }

  /** Closes the CPU window into compute_us events, scores the detector's minute, writes EMF. */
  tick(nowMs: number = Date.now()): void {
    for (const share of this.cpu.tick()) {
      this.recorder.recordUsage({
        tenantId: share.tenantId,
        tier: share.tier,
        metric: 'compute_us',
        quantity: share.computeUs,
      });
    }
    this.detector.tick(nowMs);
    this.emf?.flush(nowMs);
  }

  /** Graceful shutdown: last tick, then flush everything buffered. Returns events lost. */
  async close(): Promise<number> {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    this.#sampler?.stop();
    this.tick();
    return await this.recorder.close();
  }
}
