/**
 * The ledger bench's HTTP load: keep-alive loops of journal postings against a running server,
 * in a child process of their own. A separate process keeps the clients' work off the
 * server's event loop (in one process, a fetch client cost more CPU per request than the
 * posting it measured), and node:http with a keep-alive agent costs a fraction of fetch. The
 * clients still share the machine's cores with the server; their CPU is reported apart.
 *
 *   runLoad(order)  spawns `node --import tsx bench/ledger-load.ts`, sends it the order (a JSON
 *                   line on its stdin) and, once the child is ready, starts it with a second
 *                   line and returns what it did.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

export interface Books {
  auth: { authorization: string };
  tenantId: string;
  entityId: string;
  accounts: Record<string, string>;
}

export const batchSize = 1_000;

const debitNumbers = ['1010', '1020', '1100', '1200', '1300', '1500', '6000', '6110', '6300', '6400', '6500', '6800'];
const creditNumbers = ['2000', '2100', '2200', '3000', '4000', '4100', '4800', '4900'];
/** The hot-account load: every entry debits operating cash against one of these. */
export const hotCreditNumbers = ['4000', '4100', '4800', '4900', '2000', '2100', '2200', '3000'];

export const pick = <T>(items: T[]): T => items[Math.floor(Math.random() * items.length)] as T;

/** A balanced 2-line entry in USD between two accounts of the US chart. */
export function entry(books: Books, date: string, debit = pick(debitNumbers), credit = pick(creditNumbers)) {
  const amountMinor = 1 + Math.floor(Math.random() * 1_000_000);
  return {
    date,
    lines: [
      { accountId: books.accounts[debit], side: 'debit', amountMinor, currency: 'USD', exponent: 2 },
      { accountId: books.accounts[credit], side: 'credit', amountMinor, currency: 'USD', exponent: 2 },
    ],
  };
}

/** A day of 2025 or 2026, so postings spread over 24 monthly periods. */
export function randomDate(): string {
  const month = 1 + Math.floor(Math.random() * 12);
  const day = 1 + Math.floor(Math.random() * 28);
  const year = Math.random() < 0.5 ? 2025 : 2026;
  return `${year}-${String(month).padStart(2, '0')}-${String(day).padStart(2, '0')}`;
}

export interface LoadOrder {
  base: string;
  /**
   * single: one entry per request; batch: batchSize entries; hot: single entries that all debit
   * 1010; floor: a single entry's request sent to the bench's bare floor route (POST /floor).
   */
  kind: 'single' | 'batch' | 'hot' | 'floor';
  books: Books[];
  concurrency: number;
  durationMs: number;
}

export interface LoadResult {
  /** Entries (single, hot) or lines (batch) posted. */
  units: number;
  seconds: number;
  /** Requests answered with anything but 201, by status. */
  failures: Record<string, number>;
  /** CPU the clients used, in microseconds. */
  clientCpuUs: number;
}

function requestOf(order: LoadOrder): { path: string; body: unknown; books: Books; units: number } {
  const books = pick(order.books);
  const entries = `/v1/entities/${books.entityId}/journal-entries`;
  if (order.kind === 'batch') {
    const batch = Array.from({ length: batchSize }, () => entry(books, randomDate()));
    return { path: `${entries}/batch`, body: { entries: batch }, books, units: batchSize * 2 };
  }
  const body =
    order.kind === 'hot' ? entry(books, '2026-03-15', '1010', pick(hotCreditNumbers)) : entry(books, randomDate());
  return { path: order.kind === 'floor' ? '/floor' : entries, body, books, units: 1 };
}

function post(agent: http.Agent, base: URL, path: string, body: string, headers: object): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      {
        agent,
        host: base.hostname,
        port: base.port,
        path,
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (response) => {
        response.resume();
        response.on('end', () => resolve(response.statusCode ?? 0));
        response.on('error', reject);
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}

async function runOrder(order: LoadOrder): Promise<LoadResult> {
  const base = new URL(order.base);
  const agent = new http.Agent({ keepAlive: true, maxSockets: order.concurrency });
  const failures: Record<string, number> = {};
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const deadline = started + order.durationMs;
  let units = 0;
  await Promise.all(
    Array.from({ length: order.concurrency }, async () => {
      while (performance.now() < deadline) {
        const next = requestOf(order);
        const status = await post(agent, base, next.path, JSON.stringify(next.body), {
          ...next.books.auth,
          'idempotency-key': randomUUID(),
        });
        if (status === 201) units += next.units;
        else failures[status] = (failures[status] ?? 0) + 1;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1_000;
  const cpu = process.cpuUsage(cpuBefore);
  agent.destroy();
  return { units, seconds, failures, clientCpuUs: cpu.user + cpu.system };
}

/** Runs a load order in a child process and returns its result; rejects if the child fails. */
export async function runLoad(order: LoadOrder): Promise<LoadResult> {
  const self = fileURLToPath(import.meta.url);
  const child = spawn(process.execPath, [...process.execArgv, self, '--load-worker'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  // On stdin, not in argv: fifty firms' books exceed what a command line may hold.
  child.stdin.write(`${JSON.stringify(order)}\n`);
  let output = '';
  let announced = () => {};
  const ready = new Promise<void>((resolve) => {
    announced = resolve;
  });
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
    if (output.startsWith('ready\n')) announced();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  await Promise.race([ready, exited]);
  child.stdin.end('go\n');
  const code = await exited;
  if (code !== 0 || !output.startsWith('ready\n')) throw new Error(`ledger load worker failed (${String(code)})`);
  return JSON.parse(output.slice('ready\n'.length)) as LoadResult;
}

// The child: read the order, announce readiness, wait for the go, run, print the result.
if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2] === '--load-worker') {
  let input = '';
  let order: LoadOrder | null = null;
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', async (chunk: string) => {
    input += chunk;
    const lines = input.split('\n');
    if (order === null && lines.length > 1) {
      order = JSON.parse(lines[0] ?? '{}') as LoadOrder;
      process.stdout.write('ready\n');
    }
    if (order !== null && lines.length > 2) {
      process.stdin.pause();
      process.stdout.write(JSON.stringify(await runOrder(order)));
      process.exit(0);
    }
  });
}
