/**
 * Evidence for the noisy-neighbour harness: what the server's process and its PostgreSQL
 * were doing in each phase. The server side is bench/noisy-neighbour.probe.mjs (event-loop
 * delay, GC pauses, CPU per 100 ms, appended to a file); the database side samples
 * pg_stat_activity every 100 ms on a connection of its own. Both are read per phase window.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

export const probeModule = path.join(path.dirname(fileURLToPath(import.meta.url)), 'noisy-neighbour.probe.mjs');
const sampleIntervalMs = 100;

interface ProbeSample {
  atMs: number;
  loopMaxMs: number;
  loopP99Ms: number;
  gcMs: number;
  gcMaxMs: number;
  /** The longest pause's kind: major, minor, incremental or weak callbacks. */
  gcMaxKind: string;
  cpuMs: number;
}

interface DatabaseSample {
  atMs: number;
  /** Backends by "pool state wait", e.g. "runtime active CPU" or "runtime active Lock:tuple". */
  backends: Map<string, number>;
  /** Active backends by "pool [statement's opening]": which statements the database was busy with. */
  statements: Map<string, number>;
}

export interface Window {
  startMs: number;
  endMs: number;
  monotonicStartUs: bigint;
  monotonicEndUs: bigint;
}

/** The superuser URL of the server's database: DATABASE_URL, or the embedded cluster in `home`. */
async function databaseUrlOf(home: string): Promise<string> {
  if (process.env.DATABASE_URL) return process.env.DATABASE_URL;
  const lock = await fs.readFile(path.join(home, 'pg', 'postmaster.pid'), 'utf8');
  const port = Number(lock.split('\n')[3]);
  const password = (await fs.readFile(path.join(home, 'pg-superuser.secret'), 'utf8')).trim();
  return `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
}

/** How much of an active statement's text names it in the statements line. */
const statementChars = 60;
const activityQuery = `
  select regexp_replace(coalesce(nullif(application_name, ''), '?'), '^countinghouse-', '') as pool,
         state,
         case when state = 'active' then coalesce(wait_event_type || ':' || wait_event, 'CPU') else '' end as wait,
         case when state = 'active' then left(regexp_replace(query, '\\s+', ' ', 'g'), ${statementChars}) else '' end as statement,
         count(*)::int as backends
    from pg_stat_activity
   where backend_type = 'client backend' and pid <> pg_backend_pid() and state <> 'idle'
   group by 1, 2, 3, 4`;

/** Each key's mean per sample, largest first (the top `count`), as "key mean, …". */
function meansOf(
  samples: readonly DatabaseSample[],
  pick: (sample: DatabaseSample) => Map<string, number>,
  count = Number.POSITIVE_INFINITY,
): string {
  const totals = new Map<string, number>();
  for (const sample of samples)
    for (const [key, value] of pick(sample)) totals.set(key, (totals.get(key) ?? 0) + value);
  const parts = [...totals.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([key, total]) => `${key} ${(total / samples.length).toFixed(2)}`);
  return parts.join(', ') || 'none';
}

export class Diagnostics {
  readonly #probeFile: string;
  readonly #database: DatabaseSample[] = [];
  #client: pg.Client | null = null;
  #timer: NodeJS.Timeout | null = null;

  constructor(probeFile: string) {
    this.#probeFile = probeFile;
  }

  /** Starts sampling pg_stat_activity; a failure to connect leaves the database side empty. */
  async start(home: string): Promise<void> {
    const client = new pg.Client({ connectionString: await databaseUrlOf(home), application_name: 'bench-sampler' });
    await client.connect();
    this.#client = client;
    let busy = false;
    this.#timer = setInterval(() => {
      if (busy) return;
      busy = true;
      client
        .query<{ pool: string; state: string; wait: string; statement: string; backends: number }>(activityQuery)
        .then(({ rows }) => {
          const backends = new Map<string, number>();
          const statements = new Map<string, number>();
          const add = (map: Map<string, number>, key: string, count: number) =>
            map.set(key, (map.get(key) ?? 0) + count);
          for (const row of rows) {
            add(backends, `${row.pool} ${row.state} ${row.wait}`.trim(), row.backends);
            if (row.state === 'active') add(statements, `${row.pool} [${row.statement}]`, row.backends);
          }
          this.#database.push({ atMs: Date.now(), backends, statements });
        })
        .catch(() => {})
        .finally(() => {
          busy = false;
        });
    }, sampleIntervalMs);
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    await this.#client?.end().catch(() => {});
  }

  async #probe(window: Window): Promise<ProbeSample[]> {
    const text = await fs.readFile(this.#probeFile, 'utf8').catch(() => '');
    return text
      .split('\n')
      .filter((line) => line.length > 0)
      .map((line) => JSON.parse(line) as ProbeSample)
      .filter((sample) => sample.atMs > window.startMs && sample.atMs <= window.endMs + sampleIntervalMs);
  }

  /** One line on the server process in the window: event-loop delay, GC, CPU. */
  async serverLine(window: Window): Promise<string> {
    const samples = await this.#probe(window);
    if (samples.length === 0) return 'no probe samples';
    const maxima = samples.map((sample) => sample.loopMaxMs).sort((a, b) => a - b);
    const over = (ms: number) => samples.filter((sample) => sample.loopMaxMs > ms).length;
    const gcMs = samples.reduce((sum, sample) => sum + sample.gcMs, 0);
    const longest = samples.reduce((worst, sample) => (sample.gcMaxMs > worst.gcMaxMs ? sample : worst));
    const majorMs = samples
      .filter((sample) => sample.gcMaxKind === 'major')
      .reduce((sum, sample) => sum + sample.gcMaxMs, 0);
    const seconds = (window.endMs - window.startMs) / 1_000;
    const cpuMs = samples.reduce((sum, sample) => sum + sample.cpuMs, 0);
    return (
      `event-loop delay max ${maxima.at(-1)?.toFixed(0)} ms, p99 of 100-ms maxima ${maxima[Math.ceil(0.99 * maxima.length) - 1]?.toFixed(0)} ms, ` +
      `${over(20)} intervals > 20 ms and ${over(50)} > 50 ms of ${samples.length}; ` +
      `GC ${gcMs.toFixed(0)} ms (longest ${longest.gcMaxMs.toFixed(1)} ms, ${longest.gcMaxKind || 'none'}; ` +
      `major pauses ≥ ${majorMs.toFixed(0)} ms); CPU ${(cpuMs / seconds / 10).toFixed(0)} %`
    );
  }

  /** One line on PostgreSQL in the window: mean backends per sample by pool, state and wait. */
  databaseLine(window: Window): string {
    const samples = this.#samplesIn(window);
    if (samples.length === 0) return 'no pg_stat_activity samples';
    return `mean non-idle backends per sample (${samples.length}): ${meansOf(samples, (sample) => sample.backends)}`;
  }

  /**
   * The statements PostgreSQL was busiest with in the window: mean active backends per sample
   * by pool and the statement's opening, the top `count`. A statement that should be cheap
   * ranking high is a plan gone wrong (as the entity list did after large imports, 0028).
   */
  statementsLine(window: Window, count = 4): string {
    const samples = this.#samplesIn(window);
    if (samples.length === 0) return 'no pg_stat_activity samples';
    return `busiest statements (mean active backends): ${meansOf(samples, (sample) => sample.statements, count)}`;
  }

  #samplesIn(window: Window): DatabaseSample[] {
    return this.#database.filter((sample) => sample.atMs >= window.startMs && sample.atMs <= window.endMs);
  }

  /** The 100-ms intervals whose event-loop delay passed `thresholdMs`, with the database beside them. */
  async stalls(window: Window, thresholdMs: number): Promise<string[]> {
    const samples = await this.#probe(window);
    return samples
      .filter((sample) => sample.loopMaxMs > thresholdMs)
      .map((sample) => {
        const nearest = this.#database.find((row) => Math.abs(row.atMs - sample.atMs) <= sampleIntervalMs);
        const database = nearest ? [...nearest.backends.entries()].map(([key, n]) => `${key} ${n}`).join(', ') : '';
        return (
          `  at ${(sample.atMs - window.startMs).toFixed(0)} ms: loop delay ${sample.loopMaxMs.toFixed(0)} ms, ` +
          `GC ${sample.gcMs.toFixed(0)} ms${sample.gcMaxKind ? ` (${sample.gcMaxKind})` : ''}, CPU ${sample.cpuMs.toFixed(0)} ms; ` +
          `postgres: ${database || 'idle'}`
        );
      });
  }
}
