import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUnthrottledTenant, startTestStack, type TestStack, type TestTenant } from '../../test/harness.ts';
import { post, twoLine } from '../ledger/ledger.test-support.ts';
import { parseId } from '../platform/ids.ts';
import { Sealer } from '../platform/local-secrets.ts';
import { tenantContextOf } from '../tenancy/tenancy.service.ts';

/**
 * The accounting fields of a client entity: legal name, a taxpayer id that is sealed at rest
 * and only ever shown masked, a chart created from a template with the entity, and an
 * archived status that stops postings.
 */
let stack: TestStack;
let firm: TestTenant;
let other: TestTenant;

beforeAll(async () => {
  stack = await startTestStack();
  firm = await createUnthrottledTenant(stack.app, 'Entity Fields');
  other = await createUnthrottledTenant(stack.app, 'Entity Fields Other');
});

afterAll(async () => {
  await stack?.close();
});

async function create(payload: object) {
  return await stack.app.inject({ method: 'POST', url: '/v1/entities', headers: firm.auth, payload });
}

describe('entity fields', () => {
  it('seals the taxpayer id at rest and shows it masked', async () => {
    const created = await create({
      name: 'Harbor Dental PLLC',
      legalName: 'Harbor Dental, P.L.L.C.',
      taxpayerId: '12-3456789',
    });
    expect(created.statusCode).toBe(201);
    const entity = created.json<{ id: string }>();
    expect(entity).toMatchObject({ legalName: 'Harbor Dental, P.L.L.C.', taxpayerId: '*****6789' });
    expect(created.body).not.toContain('3456789');
    const record = await stack.platform.tenancy.getTenant(parseId('tenant', firm.id) ?? '');
    if (!record) throw new Error('tenant missing');
    const { rows } = await stack.platform.scopes.run(tenantContextOf(record), (db) =>
      db.query<{ sealed: string; last4: string }>(
        'select taxpayer_id_sealed as sealed, taxpayer_id_last4 as last4 from entities where id = $1',
        [parseId('entity', entity.id)],
      ),
    );
    const row = rows[0];
    expect(row?.sealed).toMatch(/^v1\./);
    expect(row?.sealed).not.toContain('3456789');
    expect(new Sealer(stack.config.masterKey ?? '').open(row?.sealed ?? '')).toBe('123456789');
    expect(row?.last4).toBe('6789');
  });

  it('refuses a malformed taxpayer id', async () => {
    const response = await create({ name: 'Bad Tin LLC', taxpayerId: '12-34' });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ code: 'REQUEST_VALIDATION_FAILED' });
  });

  it('creates the chart from a template with the entity, or refuses an unknown template', async () => {
    const created = await create({ name: 'Templated Co', chartTemplate: 'us-small-business' });
    const id = created.json<{ id: string }>().id;
    const accounts = await stack.app.inject({ method: 'GET', url: `/v1/entities/${id}/accounts`, headers: firm.auth });
    const items = accounts.json<{ items: Array<{ number: string; taxLines: Record<string, string> }> }>().items;
    expect(items.length).toBeGreaterThan(40);
    expect(items.find((account) => account.number === '4000')?.taxLines).toMatchObject({
      '1120': '1a',
      'schedule-c': '1',
    });
    const unknown = await create({ name: 'No Such Template Co', chartTemplate: 'nope' });
    expect(unknown.json()).toMatchObject({ code: 'CHART_TEMPLATE_NOT_FOUND' });
    const empty = await create({ name: 'Empty Chart Co' });
    const none = await stack.app.inject({
      method: 'GET',
      url: `/v1/entities/${empty.json<{ id: string }>().id}/accounts`,
      headers: firm.auth,
    });
    expect(none.json<{ items: unknown[] }>().items).toEqual([]);
  });

  it('archives an entity, after which its books take no postings; another firm cannot change it', async () => {
    const created = await create({ name: 'Closing Down Co', chartTemplate: 'us-small-business' });
    const id = created.json<{ id: string }>().id;
    const foreign = await stack.app.inject({
      method: 'PATCH',
      url: `/v1/entities/${id}`,
      headers: other.auth,
      payload: { status: 'archived' },
    });
    expect(foreign.statusCode).toBe(404);
    const patched = await stack.app.inject({
      method: 'PATCH',
      url: `/v1/entities/${id}`,
      headers: firm.auth,
      payload: { status: 'archived', taxpayerId: '123-45-6789' },
    });
    expect(patched.json()).toMatchObject({ status: 'archived', taxpayerId: '*****6789' });
    const accounts = await stack.app.inject({ method: 'GET', url: `/v1/entities/${id}/accounts`, headers: firm.auth });
    const byNumber = Object.fromEntries(
      accounts
        .json<{ items: Array<{ id: string; number: string }> }>()
        .items.map((account) => [account.number, account.id]),
    );
    const refused = await post(
      stack,
      { tenant: firm, entityId: id, accounts: byNumber },
      twoLine({ tenant: firm, entityId: id, accounts: byNumber }, '2026-01-05', '1010', '4000', 1),
    );
    expect(refused.json()).toMatchObject({ code: 'LEDGER_ENTITY_ARCHIVED' });
  });
});
