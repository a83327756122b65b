import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import pino from 'pino';
import { loadConfig } from '../apps/server/src/platform/config.ts';
import { buildHttpApp } from '../apps/server/src/platform/http/http-app.ts';
import { openPlatform } from '../apps/server/src/platform/platform.ts';

const home = await fs.mkdtemp(path.join(os.tmpdir(), 'ch-prof-'));
await fs.chmod(home, 0o755);
const operatorKey = `chop_bench_${randomBytes(24).toString('hex')}`;
const platform = await openPlatform({ ...loadConfig(process.env), home, operatorKey, masterKey: randomBytes(32).toString('hex'), runtimePoolMax: 40 }, pino({ level: 'warn' }));
const app = await buildHttpApp(platform, pino({ level: 'warn' }));
const email = `o-${randomUUID()}@x.test`;
const t = (await app.inject({ method: 'POST', url: '/v1/tenants', headers: { authorization: `Bearer ${operatorKey}` }, payload: { name: randomUUID(), tier: 'starter', admin: { email, password: 'correct horse battery' } } })).json();
const tok = (await app.inject({ method: 'POST', url: '/v1/auth/token', payload: { tenantId: t.id, email, password: 'correct horse battery' } })).json();
const auth = { authorization: `Bearer ${tok.access_token}` };
const e = (await app.inject({ method: 'POST', url: '/v1/entities', headers: auth, payload: { name: 'X', chartTemplate: 'us-small-business' } })).json();
const chart = (await app.inject({ method: 'GET', url: `/v1/entities/${e.id}/accounts`, headers: auth })).json();
const acc = Object.fromEntries(chart.items.map((a: { number: string; id: string }) => [a.number, a.id]));
const rd = () => `202${5 + Math.floor(Math.random() * 2)}-${String(1 + Math.floor(Math.random() * 12)).padStart(2, '0')}-10`;
const mk = () => ({ date: process.argv[3] === 'random' ? rd() : '2026-03-05', lines: [{ accountId: acc[pk(['1010', '1020', '1100', '1200', '1300', '1500', '6000', '6110', '6300', '6400', '6500', '6800'])], side: 'debit', amountMinor: 5, currency: 'USD', exponent: 2 }, { accountId: acc[pk(['2000', '2100', '2200', '3000', '4000', '4100', '4800', '4900'])], side: 'credit', amountMinor: 5, currency: 'USD', exponent: 2 }] });
function pk(a: string[]) { return a[Math.floor(Math.random() * a.length)] as string; }
const conc = Number(process.argv[2] ?? 32);
const base = await app.listen({ host: '127.0.0.1', port: 0 });
let done = 0;
const started = performance.now();
const sampler = setInterval(async () => {
  const { rows } = await platform.ownerPool.query(`select wait_event_type, wait_event, state, count(*)::int from pg_stat_activity where application_name = 'countinghouse-runtime' group by 1,2,3 order by 4 desc`);
  console.log(done, JSON.stringify(rows));
}, 1000);
await Promise.all(Array.from({ length: conc }, async () => {
  for (let i = 0; i < 10; i++) {
    if (process.argv[4] === 'fetch') {
      const r = await fetch(`${base}/v1/entities/${e.id}/journal-entries`, { method: 'POST', headers: { ...auth, 'idempotency-key': randomUUID(), 'content-type': 'application/json' }, body: JSON.stringify(mk()) });
      const text = await r.text();
      if (r.status !== 201) console.log(r.status, text.slice(0, 200));
    } else {
    const r = await app.inject({ method: 'POST', url: `/v1/entities/${e.id}/journal-entries`, headers: { ...auth, 'idempotency-key': randomUUID() }, payload: mk() });
    if (r.statusCode !== 201) console.log(r.statusCode, r.body.slice(0, 200));
    }
    done++;
  }
}));
clearInterval(sampler);
console.log('done', done, 'in', (performance.now() - started).toFixed(0), 'ms');
await app.close();
await platform.close();
