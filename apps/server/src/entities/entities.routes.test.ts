import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenant, startTestStack, type TestStack, type TestTenant } from '../../test/harness.ts';

/**
 * Client entities over HTTP: the happy path, idempotent retries, pagination, bad input
 * that writes nothing, and one firm's token against another firm's entities.
 */
let stack: TestStack;
let firmA: TestTenant;
let firmB: TestTenant;

beforeAll(async () => {
  stack = await startTestStack();
  firmA = await createTenant(stack.app, 'Entities A');
  firmB = await createTenant(stack.app, 'Entities B');
});

afterAll(async () => {
  await stack?.close();
});

async function createEntity(tenant: TestTenant, payload: object, headers: Record<string, string> = {}) {
  return await stack.app.inject({
    method: 'POST',
    url: '/v1/entities',
    headers: { ...tenant.auth, ...headers },
    payload,
  });
}

async function countEntities(tenant: TestTenant): Promise<number> {
  let count = 0;
  let cursor: string | null = null;
  do {
    const query: string = cursor ? `?limit=200&cursor=${cursor}` : '?limit=200';
    const page = await stack.app.inject({ method: 'GET', url: `/v1/entities${query}`, headers: tenant.auth });
    const body = page.json<{ items: unknown[]; nextCursor: string | null }>();
    count += body.items.length;
    cursor = body.nextCursor;
  } while (cursor);
  return count;
}

describe('client entities', () => {
  it('creates, reads and lists an entity with defaults filled in', async () => {
    const created = await createEntity(firmA, { name: 'Maple Street Bakery LLC', entityType: 's_corporation' });
    expect(created.statusCode).toBe(201);
    const entity = created.json<Record<string, unknown>>();
    expect(entity).toMatchObject({
      name: 'Maple Street Bakery LLC',
      entityType: 's_corporation',
      baseCurrency: 'USD',
      fiscalYearEnd: '12-31',
      status: 'active',
    });
    expect(entity.id).toMatch(/^ent_[0-9a-f]{32}$/);
    expect(created.headers.location).toBe(`/v1/entities/${entity.id}`);

    const read = await stack.app.inject({ method: 'GET', url: `/v1/entities/${entity.id}`, headers: firmA.auth });
    expect(read.statusCode).toBe(200);
    expect(read.json()).toEqual(entity);
  });

  it('pages through entities with an opaque cursor, oldest first, without repeats', async () => {
    const firm = await createTenant(stack.app, 'Paging');
    const names = ['One', 'Two', 'Three', 'Four', 'Five'];
    for (const name of names) expect((await createEntity(firm, { name })).statusCode).toBe(201);
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const url: string = `/v1/entities?limit=2${cursor ? `&cursor=${cursor}` : ''}`;
      const page = await stack.app.inject({ method: 'GET', url, headers: firm.auth });
      expect(page.statusCode).toBe(200);
      const body = page.json<{ items: Array<{ name: string }>; nextCursor: string | null }>();
      seen.push(...body.items.map((item) => item.name));
      cursor = body.nextCursor;
      pages++;
    } while (cursor);
    expect(seen).toEqual(names);
    expect(pages).toBe(3);
  });

  it('rejects a tampered cursor with a problem', async () => {
    const response = await stack.app.inject({ method: 'GET', url: '/v1/entities?cursor=bm9wZQ', headers: firmA.auth });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ code: 'PAGINATION_CURSOR_INVALID' });
  });

  it('refuses a duplicate name within a firm, case-insensitively', async () => {
    expect((await createEntity(firmA, { name: 'Oak Holdings' })).statusCode).toBe(201);
    const duplicate = await createEntity(firmA, { name: 'OAK HOLDINGS' });
    expect(duplicate.statusCode).toBe(409);
    expect(duplicate.json()).toMatchObject({ code: 'ENTITY_NAME_TAKEN' });
  });
});

describe('idempotency', () => {
  it('replays the first response for a retried key and creates one entity', async () => {
    const firm = await createTenant(stack.app, 'Idempotent');
    const headers = { 'idempotency-key': 'create-pine-1' };
    const first = await createEntity(firm, { name: 'Pine LLC' }, headers);
    const retry = await createEntity(firm, { name: 'Pine LLC' }, headers);
    expect(first.statusCode).toBe(201);
    expect(retry.statusCode).toBe(201);
    expect(retry.json()).toEqual(first.json());
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(await countEntities(firm)).toBe(1);
  });

  it('answers 409 when a key is reused with a different body', async () => {
    const headers = { 'idempotency-key': 'create-cedar-1' };
    expect((await createEntity(firmA, { name: 'Cedar LLC' }, headers)).statusCode).toBe(201);
    const reused = await createEntity(firmA, { name: 'Birch LLC' }, headers);
    expect(reused.statusCode).toBe(409);
    expect(reused.json()).toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
  });

  it('keeps idempotency keys per firm: the same key in another firm does new work', async () => {
    const headers = { 'idempotency-key': 'shared-key-across-firms' };
    const inA = await createEntity(firmA, { name: 'Shared Key Co' }, headers);
    const inB = await createEntity(firmB, { name: 'Shared Key Co' }, headers);
    expect(inA.statusCode).toBe(201);
    expect(inB.statusCode).toBe(201);
    expect(inB.headers['idempotent-replayed']).toBeUndefined();
    expect(inB.json<{ id: string }>().id).not.toBe(inA.json<{ id: string }>().id);
  });
});

describe('bad input writes nothing', () => {
  const cases: Array<{ title: string; payload: string; contentType?: string; status: number; code: string }> = [
    { title: 'malformed JSON', payload: '{"name":', status: 400, code: 'REQUEST_INVALID_JSON' },
    {
      title: 'an unknown field',
      payload: '{"name":"Ghost LLC","owner":"x"}',
      status: 400,
      code: 'REQUEST_VALIDATION_FAILED',
    },
    {
      title: 'a number where a string belongs',
      payload: '{"name":42}',
      status: 400,
      code: 'REQUEST_VALIDATION_FAILED',
    },
    {
      title: 'an unknown entity type',
      payload: '{"name":"Ghost LLC","entityType":"llp"}',
      status: 400,
      code: 'REQUEST_VALIDATION_FAILED',
    },
    {
      title: 'a bad currency',
      payload: '{"name":"Ghost LLC","baseCurrency":"usd"}',
      status: 400,
      code: 'REQUEST_VALIDATION_FAILED',
    },
    { title: 'a blank name', payload: '{"name":"   "}', status: 400, code: 'REQUEST_VALIDATION_FAILED' },
    { title: 'an empty body', payload: '', status: 400, code: 'REQUEST_INVALID_JSON' },
    {
      title: 'a body that is not JSON',
      payload: 'name=Ghost',
      contentType: 'text/plain',
      status: 415,
      code: 'REQUEST_UNSUPPORTED_MEDIA_TYPE',
    },
    {
      title: 'an oversized body',
      payload: JSON.stringify({ name: 'x'.repeat(300 * 1024) }),
      status: 413,
      code: 'REQUEST_BODY_TOO_LARGE',
    },
  ];

  for (const testCase of cases) {
    it(`answers ${testCase.status} ${testCase.code} for ${testCase.title}`, async () => {
      const firm = await createTenant(stack.app, 'Bad Input');
      const response = await stack.app.inject({
        method: 'POST',
        url: '/v1/entities',
        headers: { ...firm.auth, 'content-type': testCase.contentType ?? 'application/json' },
        payload: testCase.payload,
      });
      expect(response.statusCode).toBe(testCase.status);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(response.json()).toMatchObject({ code: testCase.code, status: testCase.status });
      expect(await countEntities(firm)).toBe(0);
    });
  }
});

describe('cross-tenant access over HTTP', () => {
  it("hides firm A's entity from firm B: read is 404, list omits it", async () => {
    const created = await createEntity(firmA, { name: 'Private Books Inc' });
    const id = created.json<{ id: string }>().id;

    const read = await stack.app.inject({ method: 'GET', url: `/v1/entities/${id}`, headers: firmB.auth });
    expect(read.statusCode).toBe(404);
    expect(read.json()).toMatchObject({ code: 'ENTITY_NOT_FOUND' });

    const list = await stack.app.inject({ method: 'GET', url: '/v1/entities?limit=200', headers: firmB.auth });
    const ids = list.json<{ items: Array<{ id: string }> }>().items.map((item) => item.id);
    expect(ids).not.toContain(id);
  });

  it("cannot change firm A's data: B's writes land only in B", async () => {
    const beforeA = await countEntities(firmA);
    expect((await createEntity(firmB, { name: 'Written By B' })).statusCode).toBe(201);
    expect(await countEntities(firmA)).toBe(beforeA);
  });

  it('gives the same 404 for a malformed id and for an id of another kind', async () => {
    for (const id of ['nope', `ten_${'0'.repeat(32)}`, `ent_${'0'.repeat(32)}`]) {
      const response = await stack.app.inject({ method: 'GET', url: `/v1/entities/${id}`, headers: firmA.auth });
      expect(response.statusCode).toBe(404);
    }
  });
});
