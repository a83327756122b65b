import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenant, startTestStack, type TestStack } from './harness.ts';

/**
 * Stateless instances: two servers on one database (as several app instances on one
 * PostgreSQL server would be) share the registry, signing keys and tenant data, so a token
 * from one is honoured by the other and each sees what the other wrote.
 */
let first: TestStack;
let second: TestStack;

beforeAll(async () => {
  [first, second] = await Promise.all([startTestStack(), startTestStack()]);
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
});
