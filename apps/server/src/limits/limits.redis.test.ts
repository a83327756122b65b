import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTenant,
  ManualClock,
  operatorKey,
  problemOf,
  startTestStack,
  type TestStack,
  type TestTenant,
} from '../../test/harness.ts';

/**
 * Scaled out: two app instances (two test stacks on one database) share Redis and enforce
 * ONE combined limit, exactly; when Redis goes away mid-way each instance falls back to its
 * share of the plan, keeps answering, and shows the alert to the operator until Redis is
 * back. The two-instance tests run when REDIS_URL is set (describe.runIf; CI sets
 * redis://127.0.0.1:6379). Redis "goes away" through a loopback TCP relay the test owns, so
 * the shared Redis itself is never stopped. The last test points an instance at a closed
 * port and runs everywhere.
 */
const redisUrl = process.env.REDIS_URL;
const operator = { authorization: `Bearer ${operatorKey}` };

/** A TCP relay to Redis that the test can cut and restore. */
class Relay {
  readonly #target: URL;
  readonly #sockets = new Set<net.Socket>();
  #server: net.Server | null = null;
  port = 0;

  constructor(target: string) {
    this.#target = new URL(target);
  }

  async open(): Promise<void> {
    const server = net.createServer((client) => {
      const upstream = net.connect(Number(this.#target.port || 6379), this.#target.hostname);
      for (const socket of [client, upstream]) {
        this.#sockets.add(socket);
        socket.on('close', () => this.#sockets.delete(socket));
        socket.on('error', () => socket.destroy());
      }
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    const address = server.address();
    if (typeof address === 'object' && address) this.port = address.port;
    this.#server = server;
  }

  async cut(): Promise<void> {
    const server = this.#server;
    this.#server = null;
    for (const socket of this.#sockets) socket.destroy();
    if (server) await new Promise((resolve) => server.close(resolve));
  }

  url(): string {
    return `redis://127.0.0.1:${this.port}${this.#target.pathname}`;
  }
}

async function waitUntil(condition: () => Promise<boolean>): Promise<void> {
  for (let attempt = 0; attempt < 500; attempt += 1) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error('condition not reached');
}

describe.runIf(redisUrl)('two instances sharing Redis', () => {
  const clock = new ManualClock();
  const relay = new Relay(redisUrl ?? 'redis://127.0.0.1:6379');
  let first: TestStack;
  let second: TestStack;

  beforeAll(async () => {
    await relay.open();
    [first, second] = await Promise.all([
      startTestStack({ clock: clock.read, config: { redisUrl } }),
      startTestStack({ clock: clock.read, config: { redisUrl: relay.url(), rateLimitFallbackPercent: 50 } }),
    ]);
  });

  afterAll(async () => {
    await Promise.all([first?.close(), second?.close()]);
    await relay.cut();
  });

  const list = (stack: TestStack, tenant: TestTenant) =>
    stack.app.inject({ method: 'GET', url: '/v1/entities', headers: tenant.auth });

  async function setPlan(tenant: TestTenant, overrides: object) {
    const response = await first.app.inject({
      method: 'PUT',
      url: `/v1/tenants/${tenant.id}/plan`,
      headers: operator,
      payload: overrides,
    });
    expect(response.statusCode).toBe(200);
  }

  const limitsOf = async (stack: TestStack) =>
    (await stack.app.inject({ method: 'GET', url: '/v1/admin/limits', headers: operator })).json<{
      store: { kind: string; state: string };
      alerts: Array<{ code: string }>;
    }>();

  it('enforce one combined limit exactly, whichever instance a request reaches', async () => {
    const firm = await createTenant(first.app, 'Shared Limit');
    const other = await createTenant(first.app, 'Shared Limit Other');
    await setPlan(firm, { usagePlan: { ratePerSecond: 2, burst: 10 } });
    const statuses: number[] = [];
    for (let index = 0; index < 16; index += 1)
      statuses.push((await list(index % 2 === 0 ? first : second, firm)).statusCode);
    expect(statuses.filter((status) => status === 200)).toHaveLength(10);
    expect(statuses.slice(10)).toEqual(Array(6).fill(429));
    // Each instance alone would have admitted 10 more; together they refuse until refill.
    clock.advance(1_000);
    const after = [await list(second, firm), await list(first, firm), await list(second, firm)];
    expect(after.map((response) => response.statusCode)).toEqual([200, 200, 429]);
    expect(after[1]?.headers['ratelimit-remaining']).toBe('0');
    expect((await list(second, other)).headers['ratelimit-remaining']).toBe('39');
    expect(await limitsOf(first)).toMatchObject({ store: { kind: 'redis', state: 'healthy' }, alerts: [] });
  });

  it('fall back per instance when Redis goes away mid-way, alert the operator, and recover', async () => {
    const firm = await createTenant(first.app, 'Outage');
    await setPlan(firm, { usagePlan: { ratePerSecond: 2, burst: 10 } });
    for (let index = 0; index < 4; index += 1) expect((await list(second, firm)).statusCode).toBe(200);
    await relay.cut();
    // Never fail the request path, never fail open: half of burst 10 on this instance alone.
    const statuses: number[] = [];
    for (let index = 0; index < 7; index += 1) statuses.push((await list(second, firm)).statusCode);
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429]);
    const degraded = await limitsOf(second);
    expect(degraded.store).toEqual({ kind: 'redis', state: 'degraded' });
    expect(degraded.alerts.map((alert) => alert.code)).toEqual(['RATE_LIMIT_STORE_UNREACHABLE']);
    const refused = await list(second, firm);
    expect(problemOf(refused).body.code).toBe('RATE_LIMITED');
    expect(refused.headers['retry-after']).toBeDefined();
    // The instance still on Redis keeps the shared state: 4 taken before the outage.
    const onRedis: number[] = [];
    for (let index = 0; index < 7; index += 1) onRedis.push((await list(first, firm)).statusCode);
    expect(onRedis).toEqual([200, 200, 200, 200, 200, 200, 429]);
    await relay.open();
    await waitUntil(async () => (await limitsOf(second)).store.state === 'healthy');
    expect((await limitsOf(second)).alerts).toEqual([]);
    expect((await list(second, firm)).statusCode).toBe(429);
    clock.advance(500);
    expect((await list(second, firm)).statusCode).toBe(200);
  });
});

describe('an instance whose Redis is not there at all', () => {
  // A closed loopback port: runs everywhere, with or without REDIS_URL.
  it('starts, serves within its share of the plan, and shows the alert', async () => {
    const stack = await startTestStack({
      clock: new ManualClock().read,
      config: { redisUrl: 'redis://127.0.0.1:1', rateLimitFallbackPercent: 25 },
    });
    try {
      const firm = await createTenant(stack.app, 'No Redis');
      const statuses: number[] = [];
      for (let index = 0; index < 12; index += 1) {
        statuses.push((await stack.app.inject({ method: 'GET', url: '/v1/entities', headers: firm.auth })).statusCode);
      }
      // A quarter of starter's burst of 40.
      expect(statuses).toEqual([...Array(10).fill(200), 429, 429]);
      const report = await stack.app.inject({ method: 'GET', url: '/v1/admin/limits', headers: operator });
      expect(report.json()).toMatchObject({
        store: { kind: 'redis', state: 'degraded' },
        alerts: [{ code: 'RATE_LIMIT_STORE_UNREACHABLE' }],
      });
    } finally {
      await stack.close();
    }
  });
});
