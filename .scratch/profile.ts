import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import pino from 'pino';
import { loadConfig } from '../apps/server/src/platform/config.ts';
import { buildHttpApp } from '../apps/server/src/platform/http/http-app.ts';
import { openPlatform } from '../apps/server/src/platform/platform.ts';

const home = await fs.mkdtemp(path.join(os.tmpdir(), 'ch-prof-'));
await fs.chmod(home, 0o755);
const operatorKey = `chop_bench_${randomBytes(24).toString('hex')}`;
const platform = await openPlatform({ ...loadConfig(process.env), home, operatorKey, masterKey: randomBytes(32).toString('hex'), runtimePoolMax: 10 }, pino({ level: 'warn' }));
const app = await buildHttpApp(platform, pino({ level: 'warn' }));
const timings = new Map<string, number>();
const original = pg.Client.prototype.query;
let on = false;
// biome-ignore lint: scratch
(pg.Client.prototype as any).query = function (this: unknown, ...args: unknown[]) {
  const text = typeof args[0] === 'string' ? args[0] : ((args[0] as { text?: string })?.text ?? '?');
  const started = performance.now();
  // biome-ignore lint: scratch
  const result = (original as any).apply(this, args);
  if (on && result && typeof result.then === 'function') {
    return result.then((value: unknown) => {
      const key = text.replace(/\s+/g, ' ').slice(0, 70);
      timings.set(key, (timings.get(key) ?? 0) + performance.now() - started);
      return value;
    });
  }
  return result;
};
const email = `o-${randomUUID()}@x.test`;
const t = (await app.inject({ method: 'POST', url: '/v1/tenants', headers: { authorization: `Bearer ${operatorKey}` }, payload: { name: randomUUID(), tier: 'starter', admin: { email, password: 'correct horse battery' } } })).json();
const tok = (await app.inject({ method: 'POST', url: '/v1/auth/token', payload: { tenantId: t.id, email, password: 'correct horse battery' } })).json();
const auth = { authorization: `Bearer ${tok.access_token}` };
const e = (await app.inject({ method: 'POST', url: '/v1/entities', headers: auth, payload: { name: 'X', chartTemplate: 'us-small-business' } })).json();
const chart = (await app.inject({ method: 'GET', url: `/v1/entities/${e.id}/accounts`, headers: auth })).json();
const acc = Object.fromEntries(chart.items.map((a: { number: string; id: string }) => [a.number, a.id]));
const mk = () => ({ date: '2026-03-05', lines: [{ accountId: acc['1010'], side: 'debit', amountMinor: 5, currency: 'USD', exponent: 2 }, { accountId: acc['4000'], side: 'credit', amountMinor: 5, currency: 'USD', exponent: 2 }] });
on = true;
const mode = process.argv[2] ?? 'batch';
const started = performance.now();
for (let i = 0; i < 5; i++) {
  const r = mode === 'batch'
    ? await app.inject({ method: 'POST', url: `/v1/entities/${e.id}/journal-entries/batch`, headers: { ...auth, 'idempotency-key': randomUUID() }, payload: { entries: Array.from({ length: 1000 }, mk) } })
    : await app.inject({ method: 'POST', url: `/v1/entities/${e.id}/journal-entries`, headers: { ...auth, 'idempotency-key': randomUUID() }, payload: mk() });
  if (r.statusCode !== 201) console.log(r.body);
}
console.log('total ms', (performance.now() - started).toFixed(0));
for (const [k, v] of [...timings].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(v.toFixed(1).padStart(8), k);
await app.close();
await platform.close();
