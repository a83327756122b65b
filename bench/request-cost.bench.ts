/**
 * What the instance's cheapest requests cost it: the server's CPU per request for (1) a refused
 * request and (2) an accepted read of one client entity.
 *
 * (1) is what a flood costs: a tenant over its usage plan gets 429 for every request it sends,
 * and the instance pays for each refusal with time its other tenants' requests would use, so
 * the cheaper a refusal, the less a flood takes from them (bench/noisy-neighbour.bench.ts
 * measures what they feel). One tenant with a plan of 1 request a second and a burst of 1 sends
 * list requests, so that after the first nearly every one is refused (by the penalty box,
 * limits/penalty-box.ts). (2) is the floor of every page a firm opens: the same tenant, its plan
 * lifted, reads one entity (a tenant scope of one statement).
 *
 * The requests come from a child process (node:http, keep-alive): --rounds rounds of
 * --requests requests at --concurrency outstanding, as fast as the server answers. Prints per
 * round the server's CPU per request (this process: the server runs in it, on the embedded
 * PostgreSQL or DATABASE_URL) and the clients', then the median of each kind.
 *
 *   npx tsx bench/request-cost.bench.ts [--requests 20000] [--concurrency 64] [--rounds 5]
 */
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { loadConfig } from '../apps/server/src/platform/config.ts';
import { buildHttpApp } from '../apps/server/src/platform/http/http-app.ts';
import { openPlatform } from '../apps/server/src/platform/platform.ts';
import { intFlag } from './bench-flags.ts';

const { values: flags } = parseArgs({
  options: {
    requests: { type: 'string', default: '20000' },
    concurrency: { type: 'string', default: '64' },
    rounds: { type: 'string', default: '5' },
  },
});
const requests = intFlag(flags, 'requests', 100, 10_000_000);
const concurrency = intFlag(flags, 'concurrency', 1, 1_000);
const rounds = intFlag(flags, 'rounds', 1, 100);

/** The load: `total` GETs of a path at `concurrency` outstanding; prints the status counts and its CPU. */
const loadSource = `
const http = require('node:http');
const [base, path, total, concurrency, authorization] = process.argv.slice(1);
const url = new URL(base);
const agent = new http.Agent({ keepAlive: true, maxSockets: Number(concurrency) });
const statuses = {};
let sent = 0;
let answered = 0;
const started = Date.now();
function send() {
  if (sent >= Number(total)) return;
  sent++;
  const options = { agent, host: url.hostname, port: url.port, path, headers: { authorization } };
  http.get(options, (response) => {
    response.resume();
    response.on('end', () => {
      statuses[response.statusCode] = (statuses[response.statusCode] ?? 0) + 1;
      if (++answered < Number(total)) return send();
      const cpu = process.cpuUsage();
      console.log(JSON.stringify({ statuses, ms: Date.now() - started, cpuUs: cpu.user + cpu.system }));
      agent.destroy();
    });
  });
}
for (let i = 0; i < Number(concurrency); i++) send();
`;

interface LoadResult {
  statuses: Record<string, number>;
  ms: number;
  cpuUs: number;
}

function load(base: string, urlPath: string, total: number, authorization: string): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['-e', loadSource, base, urlPath, String(total), String(concurrency), authorization],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let output = '';
    child.stdout.on('data', (chunk) => {
      output += chunk;
    });
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0 ? resolve(JSON.parse(output) as LoadResult) : reject(new Error(`load exited ${code}`)),
    );
  });
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;

console.log(
  `request-cost bench: ${os.cpus().length} cores, node ${process.version}, load ${os.loadavg()[0]?.toFixed(2)}; ` +
    `${rounds} rounds of ${requests} requests at ${concurrency} outstanding`,
);
const home = await fs.mkdtemp(path.join(os.tmpdir(), 'countinghouse-bench-'));
await fs.chmod(home, 0o755);
const operatorKey = `chop_bench_${randomBytes(24).toString('hex')}`;
const config = { ...loadConfig(process.env), home, operatorKey, masterKey: randomBytes(32).toString('hex') };
const log = pino({ level: 'warn' });
const platform = await openPlatform(config, log);
const app = await buildHttpApp(platform, log);
try {
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  const call = async (method: string, url: string, authorization: string | null, body: unknown) => {
    const response = await fetch(`${base}${url}`, {
      method,
      headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
      body: JSON.stringify(body),
    });
    const text = await response.text();
    if (response.status >= 300) throw new Error(`${method} ${url} → ${response.status} ${text.slice(0, 300)}`);
    return JSON.parse(text);
  };
  const operator = `Bearer ${operatorKey}`;
  const email = `owner-${randomUUID()}@bench.test`;
  const password = 'correct horse battery staple';
  const tenant = await call('POST', '/v1/tenants', operator, {
    name: `Bench firm ${randomUUID()}`,
    tier: 'starter',
    admin: { email, password },
  });
  const token = await call('POST', '/v1/auth/token', null, { tenantId: tenant.id, email, password });
  const authorization = `Bearer ${token.access_token}`;
  const entity = await call('POST', '/v1/entities', authorization, { name: 'Client of the bench' });

  /** Rounds of `urlPath`, each checked to have answered `status`; the median server CPU per request. */
  async function measure(label: string, urlPath: string, status: number): Promise<number> {
    await load(base, urlPath, Math.min(requests, 5_000), authorization); // warm-up, not measured
    const serverUs: number[] = [];
    for (let round = 1; round <= rounds; round++) {
      const before = process.cpuUsage();
      const result = await load(base, urlPath, requests, authorization);
      const cpu = process.cpuUsage(before);
      const expected = result.statuses[String(status)] ?? 0;
      if (expected < requests * 0.99)
        throw new Error(`${label}: expected ${status}, got ${JSON.stringify(result.statuses)}`);
      serverUs.push((cpu.user + cpu.system) / requests);
      console.log(
        `${label} round ${round}: ${expected} of ${requests} answered ${status} in ${(result.ms / 1000).toFixed(1)} s ` +
          `(${Math.round((requests / result.ms) * 1000)}/s); CPU per request: server ${serverUs.at(-1)?.toFixed(0)} µs, ` +
          `client ${(result.cpuUs / requests).toFixed(0)} µs`,
      );
    }
    return median(serverUs);
  }

  await call('PUT', `/v1/tenants/${tenant.id}/plan`, operator, {
    usagePlan: { ratePerSecond: 1, burst: 1, quota: { limit: 1_000_000_000 } },
  });
  const refusal = await measure('refused', '/v1/entities?limit=100', 429);
  await call('PUT', `/v1/tenants/${tenant.id}/plan`, operator, {
    usagePlan: { ratePerSecond: 100_000, burst: 1_000_000, quota: { limit: 1_000_000_000 } },
    limits: { inFlightRequestsMax: 10_000, databaseConnectionsMax: 200 },
  });
  const read = await measure('read', `/v1/entities/${entity.id}`, 200);
  const perCore = (us: number) => Math.round(1e6 / us).toLocaleString('en-US');
  console.log(
    `request cost: refused request ${refusal.toFixed(0)} µs of server CPU (one core answers about ${perCore(refusal)}/s)`,
  );
  console.log(
    `request cost: one-entity read ${read.toFixed(0)} µs of server CPU, PostgreSQL's apart (one core serves about ${perCore(read)}/s)`,
  );
} finally {
  await app.close();
  await platform.close();
  await fs.rm(home, { recursive: true, force: true });
}
