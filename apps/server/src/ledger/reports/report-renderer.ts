import { Piscina } from 'piscina';
import { limitsLimits } from '../../limits/limits.limits.ts';
import { AppError } from '../../platform/errors.ts';
import type { RenderTask } from './report-renderer.thread.ts';
import type { StatementTable } from './statement-table.ts';

export interface ReportRendererOptions {
  threads: number;
  /** Nice increment of the rendering threads (Linux: per thread); 0 for none. */
  nice: number;
  queueMax: number;
}

const idleTimeoutMs = 60_000;

/**
 * Renders statement files (PDF, XLSX) and report-pack archives on worker threads, off the
 * event loop. A trial balance's PDF takes about 20 ms of CPU for sixty accounts and 250 ms
 * for two thousand; on the event loop that time is a stall for every firm's requests on the
 * instance, which is how one firm's downloads or report packs would become its neighbours'
 * latency. On a thread the kernel shares the cores instead, and at the thread's nice value
 * (`COUNTINGHOUSE_RENDER_NICE`) the event loop and PostgreSQL win whenever both want a core:
 * heavy report work loses to interactive requests, as docs/limits.md promises.
 *
 * Threads start on first use and stop after a minute idle. At most `queueMax` renders wait;
 * past that a request is refused with 503 SERVICE_OVERLOADED (a report-pack job retries).
 */
export class ReportRenderer {
  readonly #pool: Piscina<RenderTask, Uint8Array>;
  readonly #queueMax: number;

  constructor(options: ReportRendererOptions) {
    this.#queueMax = options.queueMax;
    this.#pool = new Piscina({
      filename: new URL('./report-renderer.worker.mjs', import.meta.url).href,
      minThreads: 0,
      maxThreads: options.threads,
      idleTimeout: idleTimeoutMs,
      niceIncrement: options.nice,
    });
  }

  async pdf(table: StatementTable): Promise<Buffer> {
    return await this.#render({ kind: 'pdf', table });
  }

  async xlsx(table: StatementTable): Promise<Buffer> {
    return await this.#render({ kind: 'xlsx', table });
  }

  /** A ZIP archive of the files, each under its name. */
  async zip(files: Record<string, Uint8Array>, mtime: Date): Promise<Buffer> {
    return await this.#render({ kind: 'zip', files, mtime });
  }

  async close(): Promise<void> {
    await this.#pool.close();
  }

  async #render(task: RenderTask): Promise<Buffer> {
    if (this.#pool.queueSize >= this.#queueMax) {
      throw new AppError('SERVICE_OVERLOADED', 'Too many reports are being rendered; retry shortly.', {
        retryAfterSeconds: limitsLimits.retryAfterSecondsOverloaded,
      });
    }
    // The bytes come back structured-cloned, as a plain Uint8Array: view them as a Buffer.
    const bytes = await this.#pool.run(task);
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
}
