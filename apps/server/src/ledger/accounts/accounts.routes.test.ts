import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUnthrottledTenant, startTestStack, type TestStack, type TestTenant } from '../../../test/harness.ts';
import { createBooks, type TestBooks } from '../ledger.test-support.ts';

/**
 * Charts of accounts over HTTP: templates listed with tax lines, accounts added with
 * parents and unique numbers, deactivated and re-sharded, refusals for bad parents and
 * duplicate numbers, and another firm's 404.
 */
let stack: TestStack;
let firm: TestTenant;
let other: TestTenant;
let books: TestBooks;

beforeAll(async () => {
  stack = await startTestStack();
  firm = await createUnthrottledTenant(stack.app, 'Accounts');
  other = await createUnthrottledTenant(stack.app, 'Accounts Other');
  books = await createBooks(stack, firm);
});

afterAll(async () => {
  await stack?.close();
});

function accounts(path = '', method: 'GET' | 'POST' | 'PATCH' = 'GET', payload?: object, tenant = firm) {
  return stack.app.inject({
    method,
    url: `/v1/entities/${books.entityId}/accounts${path}`,
    headers: tenant.auth,
    ...(payload ? { payload } : {}),
  });
}

describe('charts of accounts', () => {
  it('lists the US small-business template with its forms', async () => {
    const response = await stack.app.inject({ method: 'GET', url: '/v1/chart-templates', headers: firm.auth });
    const template = response.json<{ items: Array<{ id: string; forms: object; accounts: unknown[] }> }>().items[0];
    expect(template?.id).toBe('us-small-business');
    expect(Object.keys(template?.forms ?? {}).sort()).toEqual(['1065', '1120', '1120-S', 'schedule-c']);
  });

  it('adds a sub-account under a parent of the same type and pages by number', async () => {
    const created = await accounts('', 'POST', {
      number: '1040',
      name: 'Payroll checking',
      type: 'asset',
      parentId: books.accounts['1000'],
    });
    expect(created.statusCode).toBe(201);
    expect(created.json()).toMatchObject({
      normalBalance: 'debit',
      parentId: books.accounts['1000'],
      active: true,
      balanceShards: 1,
    });
    const page = await accounts('?limit=3');
    const body = page.json<{ items: Array<{ number: string }>; nextCursor: string }>();
    expect(body.items.map((item) => item.number)).toEqual(['1000', '1010', '1020']);
    const next = await accounts(`?limit=3&cursor=${body.nextCursor}`);
    expect(next.json<{ items: Array<{ number: string }> }>().items.map((item) => item.number)).toEqual([
      '1030',
      '1040',
      '1100',
    ]);
  });

  it('refuses a duplicate number, a parent of another type, and a cycle', async () => {
    expect((await accounts('', 'POST', { number: '1010', name: 'Again', type: 'asset' })).json()).toMatchObject({
      code: 'ACCOUNT_NUMBER_TAKEN',
    });
    expect(
      (
        await accounts('', 'POST', { number: '1099', name: 'Odd', type: 'asset', parentId: books.accounts['4000'] })
      ).json(),
    ).toMatchObject({ code: 'ACCOUNT_PARENT_INVALID' });
    const cycle = await accounts(`/${books.accounts['1000']}`, 'PATCH', { parentId: books.accounts['1010'] });
    expect(cycle.json()).toMatchObject({ code: 'ACCOUNT_PARENT_INVALID' });
    expect((await accounts('', 'POST', { number: '1098', name: 'Bad', type: 'asset', extra: 1 })).statusCode).toBe(400);
  });

  it('deactivates and re-shards an account', async () => {
    const patched = await accounts(`/${books.accounts['1010']}`, 'PATCH', {
      balanceShards: 8,
      name: 'Operating checking (main)',
    });
    expect(patched.json()).toMatchObject({ balanceShards: 8, name: 'Operating checking (main)' });
    expect((await accounts(`/${books.accounts['1030']}`, 'PATCH', { active: false })).json()).toMatchObject({
      active: false,
    });
    expect((await accounts(`/${books.accounts['1030']}`, 'PATCH', { balanceShards: 65 })).statusCode).toBe(400);
  });

  it('refuses a template on a chart that already has accounts', async () => {
    const response = await accounts('/from-template', 'POST', { template: 'us-small-business' });
    expect(response.json()).toMatchObject({ code: 'ACCOUNT_CHART_NOT_EMPTY' });
  });

  it('gives another firm a 404 for the chart and its accounts', async () => {
    for (const [path, method, payload] of [
      ['', 'GET', undefined],
      [`/${books.accounts['1010']}`, 'GET', undefined],
      [`/${books.accounts['1010']}`, 'PATCH', { active: false }],
      ['', 'POST', { number: '9999', name: 'Intruder', type: 'expense' }],
    ] as const) {
      const response = await accounts(path, method, payload, other);
      expect(response.statusCode, `${method} ${path}`).toBe(404);
    }
    expect((await accounts(`/${books.accounts['1010']}`)).json()).toMatchObject({ active: true });
  });
});
