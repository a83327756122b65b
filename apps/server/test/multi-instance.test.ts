import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenant, operatorKey, startTestStack, type TestStack, uniqueInteractiveChannel } from './harness.ts';

/**
 * Stateless instances: two servers on one database (as several app instances on one
 * PostgreSQL server would be) share the registry, signing keys and tenant data, so a token
 * from one is honoured by the other and each sees what the other wrote; and each tells the
 * other when firms are using it, so batch work on either gives way to firms on both.
 */
let first: TestStack;
let second: TestStack;

beforeAll(async () => {
  // One deployment: one interactive-load channel (the harness gives every other stack its own).
  const interactiveChannel = uniqueInteractiveChannel();
  [first, second] = await Promise.all([startTestStack({ interactiveChannel }), startTestStack({ interactiveChannel })]);
});

afterAll(async () => {
  await Promise.all([first?.close(), second?.close()]);
});

describe('two instances on one database', () => {
  it('publish the same signing keys', async () => {
    const jwksOf = async (stack: TestStack) =>
      (await stack.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json();
    expect(await jwksOf(first)).toEqual(await jwksOf(second));
  });

  it("honour each other's tokens and see each other's writes, tenant by tenant", async () => {
    const firm = await createTenant(first.app, 'Two Instances');
    const other = await createTenant(second.app, 'Two Instances Other');
    const created = await second.app.inject({
      method: 'POST',
      url: '/v1/entities',
      headers: firm.auth,
      payload: { name: 'Across LLC' },
    });
    expect(created.statusCode).toBe(201);
    const id = created.json<{ id: string }>().id;
    const read = await first.app.inject({ method: 'GET', url: `/v1/entities/${id}`, headers: firm.auth });
    expect(read.statusCode).toBe(200);
    const hidden = await first.app.inject({ method: 'GET', url: `/v1/entities/${id}`, headers: other.auth });
    expect(hidden.statusCode).toBe(404);
  });

  it('tell each other when firms use them, for a second, so batch work on the other is paced too', async () => {
    const outsider = await startTestStack();
    try {
      const firm = await createTenant(first.app, 'Busy Firm');
      const busyElsewhere = async (stack: TestStack) => {
        const report = await stack.app.inject({
          method: 'GET',
          url: '/v1/admin/limits',
          headers: { authorization: `Bearer ${operatorKey}` },
        });
        return report.json<{ instance: { firmsBusyElsewhere: boolean } }>().instance.firmsBusyElsewhere;
      };
      // Quiet: a second after the last request on either, neither is busy elsewhere.
      await expect.poll(() => busyElsewhere(second), { timeout: 5_000 }).toBe(false);
      await expect.poll(() => busyElsewhere(first), { timeout: 5_000 }).toBe(false);
      const read = await first.app.inject({ method: 'GET', url: '/v1/entities', headers: firm.auth });
      expect(read.statusCode).toBe(200);
      await expect.poll(() => busyElsewhere(second), { timeout: 5_000 }).toBe(true);
      // Its own requests are not "elsewhere", and another deployment never hears of them.
      expect(await busyElsewhere(first)).toBe(false);
      expect(await busyElsewhere(outsider)).toBe(false);
      await expect.poll(() => busyElsewhere(second), { timeout: 5_000 }).toBe(false);
    } finally {
      await outsider.close();
    }
  });
});
