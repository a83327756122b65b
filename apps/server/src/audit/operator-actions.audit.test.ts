import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTenant,
  dropTenantDatabases,
  operatorKey,
  startTestStack,
  type TestStack,
  type TestTenant,
} from '../../test/harness.ts';
import { type CliConnection, runOperatorCommand } from '../metering/cli/operator-cli.ts';
import { parseId } from '../platform/ids.ts';
import { runTenantCommand } from '../tenancy/cli/tenant-cli.ts';
import { tenantContextOf } from '../tenancy/tenancy.service.ts';
import type { AuditEvent } from './audit.types.ts';

/**
 * Operator actions on a firm that change only the control plane land in the firm's own
 * audit log, with the operator as actor, and leave its chain intact: suspending and resuming
 * (over HTTP and the tenant CLI; asking for the state the firm is already in records
 * nothing), on a pool and a bridge firm; and issuing a month's invoices (over HTTP and the
 * `invoices --month M --issue` CLI), one event per invoice issued, none when issuing again.
 * Each event is read back from the firm's log and the chain verified by the operator route.
 * A signing-key rotation concerns every firm, so it goes to the platform's own log, read and
 * verified by operator routes that a firm's token cannot reach.
 */
let stack: TestStack;
let connection: CliConnection;
const operator = { authorization: `Bearer ${operatorKey}` };
const bridgeFirms: string[] = [];

beforeAll(async () => {
  stack = await startTestStack();
  const address = await stack.app.listen({ host: '127.0.0.1', port: 0 });
  connection = { baseUrl: address, operatorKey };
});

afterAll(async () => {
  if (stack) await dropTenantDatabases(stack.platform, bridgeFirms);
  await stack?.close();
});

const quiet = { stdout: () => {}, stderr: () => {} };

async function eventsOf(tenant: TestTenant, action: string): Promise<AuditEvent[]> {
  const record = await stack.platform.tenancy.getTenant(parseId('tenant', tenant.id) ?? '');
  if (record === null) throw new Error('no tenant');
  const page = await stack.platform.audit.list(tenantContextOf(record), { action }, null, 100);
  return page.items;
}

async function expectChainIntact(tenant: TestTenant): Promise<void> {
  const verified = await stack.app.inject({
    method: 'GET',
    url: `/v1/admin/tenants/${tenant.id}/audit/verify`,
    headers: operator,
  });
  expect(verified.statusCode, verified.body).toBe(200);
  expect(verified.json()).toMatchObject({ ok: true });
}

async function post(url: string, payload?: object) {
  return await stack.app.inject({ method: 'POST', url, headers: operator, ...(payload ? { payload } : {}) });
}

describe('suspend and resume', () => {
  it.each([
    ['pool', 'starter'],
    ['bridge', 'professional'],
  ])('are written to a %s firm’s own log once each, with the operator and the reason', async (_model, tier) => {
    const firm = await createTenant(stack.app, 'Suspended', tier);
    if (tier === 'professional') bridgeFirms.push(firm.id);
    const suspended = await post(`/v1/tenants/${firm.id}/suspend`, { reason: 'Unpaid invoice 2026-10' });
    expect(suspended.statusCode, suspended.body).toBe(200);
    expect(suspended.json()).toMatchObject({ status: 'suspended' });
    // Suspending a suspended firm is accepted and changes nothing, so it records nothing.
    expect((await post(`/v1/tenants/${firm.id}/suspend`, { reason: 'again' })).statusCode).toBe(200);
    const suspensions = await eventsOf(firm, 'tenant.suspend');
    expect(suspensions).toHaveLength(1);
    expect(suspensions[0]).toMatchObject({
      actor: { kind: 'operator', id: 'bootstrap' },
      resourceType: 'tenant',
      resourceId: firm.id,
      summary: { reason: 'Unpaid invoice 2026-10' },
    });
    expect(suspensions[0]?.requestId).toEqual(expect.any(String));

    expect((await post(`/v1/tenants/${firm.id}/resume`)).json()).toMatchObject({ status: 'active' });
    expect((await post(`/v1/tenants/${firm.id}/resume`)).statusCode).toBe(200);
    const resumptions = await eventsOf(firm, 'tenant.resume');
    expect(resumptions).toHaveLength(1);
    expect(resumptions[0]).toMatchObject({ actor: { kind: 'operator', id: 'bootstrap' }, resourceId: firm.id });
    expect((resumptions[0]?.seq ?? 0n) > (suspensions[0]?.seq ?? 0n)).toBe(true);
    await expectChainIntact(firm);
  });

  it('are recorded when the tenant CLI asks, and a refused change records nothing', async () => {
    const firm = await createTenant(stack.app, 'CLI Suspended');
    expect(await runTenantCommand(['suspend', firm.id, '--reason', 'Asked by the firm'], connection, quiet)).toBe(0);
    expect(await runTenantCommand(['resume', firm.id], connection, quiet)).toBe(0);
    expect((await eventsOf(firm, 'tenant.suspend')).map((event) => event.summary)).toEqual([
      { reason: 'Asked by the firm' },
    ]);
    expect(await eventsOf(firm, 'tenant.resume')).toHaveLength(1);
    // An offboarded firm cannot be suspended: the refusal changes nothing and records nothing.
    await stack.platform.ownerPool.query(`update tenants set status = 'offboarded' where id = $1`, [
      parseId('tenant', firm.id),
    ]);
    stack.platform.tenancy.forget(parseId('tenant', firm.id) ?? '');
    const refused = await post(`/v1/tenants/${firm.id}/suspend`, {});
    expect(refused.json()).toMatchObject({ code: 'TENANT_STATUS_CONFLICT' });
    expect(await eventsOf(firm, 'tenant.suspend')).toHaveLength(1);
    await expectChainIntact(firm);
  });
});

describe('issuing invoices', () => {
  /**
   * A firm that joined at the start of a past month no other test issues (2019-04 to
   * 2025-12: the billing tests issue 2019-03 and 2018-06, their fixtures join in 2019 and
   * 2026), so issuing that month bills this firm and leaves the other tests' firms alone.
   */
  async function firmJoinedIn(prefix: string): Promise<{ firm: TestTenant; month: string }> {
    const firm = await createTenant(stack.app, prefix);
    const index = Math.floor(Math.random() * (7 * 12 - 3)) + 3;
    const month = `${2019 + Math.floor(index / 12)}-${String((index % 12) + 1).padStart(2, '0')}`;
    await stack.platform.ownerPool.query('update tenants set created_at = $2 where id = $1', [
      parseId('tenant', firm.id),
      `${month}-01T00:00:00Z`,
    ]);
    return { firm, month };
  }

  it('writes each invoice issued to its firm’s log, and nothing when the month is issued again', async () => {
    const { firm, month } = await firmJoinedIn('Invoiced');
    const issued = await post('/v1/admin/invoices/issue', { month });
    expect(issued.statusCode, issued.body).toBe(200);
    const invoice = issued
      .json<{ items: Array<{ id: string; tenantId: string; totalMinor: number; currency: string }> }>()
      .items.find((item) => item.tenantId === firm.id);
    if (!invoice) throw new Error('the firm was not invoiced');
    const events = (await eventsOf(firm, 'invoice.issue')).filter((event) => event.resourceId === invoice.id);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      actor: { kind: 'operator', id: 'bootstrap' },
      resourceType: 'invoice',
      summary: { month, currency: invoice.currency, totalMinor: invoice.totalMinor },
    });
    expect(events[0]?.afterDigest?.length).toBe(32);

    const again = await post('/v1/admin/invoices/issue', { month });
    expect(again.statusCode).toBe(200);
    expect((await eventsOf(firm, 'invoice.issue')).filter((event) => event.resourceId === invoice.id)).toHaveLength(1);
    await expectChainIntact(firm);
  });

  /** Issues the month while the firm's log refuses appends, as an unreachable database would. */
  async function issueWithLogDown(tenantId: string, month: string) {
    const owner = stack.platform.ownerPool;
    await owner.query(`
      create function test_log_down() returns trigger language plpgsql as $$
      begin
        if new.tenant_id = '${tenantId}' then raise exception 'test: the firm''s log is down'; end if;
        return new;
      end $$;
      create trigger test_log_down before insert on audit_events for each row execute function test_log_down()`);
    try {
      return await post('/v1/admin/invoices/issue', { month });
    } finally {
      await owner.query('drop trigger test_log_down on audit_events; drop function test_log_down()');
    }
  }

  it('drops the pending event of a firm purged before it was written: a purged firm has no log', async () => {
    const { firm, month } = await firmJoinedIn('Purged Before Its Event');
    const tenantId = parseId('tenant', firm.id) ?? '';
    const issued = await issueWithLogDown(tenantId, month);
    expect(issued.statusCode, issued.body).toBe(200);
    expect(issued.json().auditsPending).toEqual([{ invoiceId: expect.any(String), tenantId: firm.id }]);
    await stack.platform.ownerPool.query('update tenants set purged_at = now() where id = $1', [tenantId]);
    const again = await post('/v1/admin/invoices/issue', { month });
    expect(again.statusCode, again.body).toBe(200);
    const { rows } = await stack.platform.ownerPool.query(
      'select 1 from issued_invoice_audits_pending where tenant = $1',
      [tenantId],
    );
    expect(rows).toEqual([]);
    expect(await eventsOf(firm, 'invoice.issue')).toEqual([]);
  });

  it('keeps the event of an invoice whose firm’s log failed, and writes it once when the month is issued again', async () => {
    const { firm, month } = await firmJoinedIn('Log Down');
    const tenantId = parseId('tenant', firm.id) ?? '';
    const owner = stack.platform.ownerPool;
    // The invoice is issued all the same, and the answer says whose event is still pending.
    const issued = await issueWithLogDown(tenantId, month);
    expect(issued.statusCode, issued.body).toBe(200);
    const invoice = await stack.app.inject({
      method: 'GET',
      url: `/v1/admin/tenants/${firm.id}/invoices/${month}`,
      headers: operator,
    });
    expect(invoice.json()).toMatchObject({ status: 'issued' });
    const invoiceId = invoice.json<{ id: string }>().id;
    expect(issued.json().auditsPending).toEqual([{ invoiceId, tenantId: firm.id }]);
    const pending = () =>
      owner
        .query<{ invoice_id: string }>('select invoice_id from issued_invoice_audits_pending where tenant = $1', [
          tenantId,
        ])
        .then((result) => result.rows.map((row) => row.invoice_id));
    expect(await pending()).toEqual([invoiceId]);
    expect(await eventsOf(firm, 'invoice.issue')).toEqual([]);

    // Issuing again issues nothing new but writes the event that was left pending.
    const again = await post('/v1/admin/invoices/issue', { month });
    expect(again.statusCode, again.body).toBe(200);
    expect(again.json()).toMatchObject({ newlyIssued: 0, auditsPending: [] });
    expect((await eventsOf(firm, 'invoice.issue')).map((event) => event.resourceId)).toEqual([invoiceId]);
    expect(await pending()).toEqual([]);

    // A crash after the append, before the outbox row went: the retry finds the event and writes nothing.
    await owner.query(
      'insert into issued_invoice_audits_pending (invoice_id, tenant, month) select id, tenant, month from issued_invoices where id = $1',
      [invoiceId],
    );
    expect((await post('/v1/admin/invoices/issue', { month })).statusCode).toBe(200);
    expect(await eventsOf(firm, 'invoice.issue')).toHaveLength(1);
    expect(await pending()).toEqual([]);
    await expectChainIntact(firm);
  });

  it('writes the invoices the CLI issues too', async () => {
    const { firm, month } = await firmJoinedIn('CLI Invoiced');
    let stdout = '';
    const code = await runOperatorCommand('invoices', ['--month', month, '--issue'], connection, {
      stdout: (text) => {
        stdout += text;
      },
      stderr: () => {},
    });
    expect(code).toBe(0);
    const invoice = (JSON.parse(stdout) as { items: Array<{ id: string; tenantId: string }> }).items.find(
      (item) => item.tenantId === firm.id,
    );
    if (!invoice) throw new Error('the firm was not invoiced');
    const events = (await eventsOf(firm, 'invoice.issue')).filter((event) => event.resourceId === invoice.id);
    expect(events.map((event) => event.actor)).toEqual([{ kind: 'operator', id: 'bootstrap' }]);
    await expectChainIntact(firm);
  });
});

describe('signing-key rotation', () => {
  it("is written to the platform's own log, not a firm's, over HTTP and the CLI", async () => {
    const firm = await createTenant(stack.app, 'Key Watcher');
    const rotated = await post('/v1/admin/signing-keys/rotate');
    expect(rotated.statusCode, rotated.body).toBe(200);
    let stdout = '';
    const code = await runOperatorCommand('signing-keys', ['rotate'], connection, {
      stdout: (text) => {
        stdout += text;
      },
      stderr: () => {},
    });
    expect(code).toBe(0);
    const kids = [rotated.json<{ kid: string }>().kid, (JSON.parse(stdout) as { kid: string }).kid];

    const listed = await stack.app.inject({
      method: 'GET',
      url: '/v1/admin/audit/events?action=signing_key.rotate&limit=1000',
      headers: operator,
    });
    expect(listed.statusCode, listed.body).toBe(200);
    const events = listed
      .json<{ items: Array<{ action: string; actor: object; resource: { id: string }; summary: object }> }>()
      .items.filter((event) => kids.includes(event.resource.id));
    expect(events.map((event) => [event.resource.id, event.actor])).toEqual(
      kids.map((kid) => [kid, { kind: 'operator', id: 'bootstrap' }]),
    );
    expect(events[0]?.summary).toMatchObject({ kid: kids[0] });
    const verified = await stack.app.inject({ method: 'GET', url: '/v1/admin/audit/verify', headers: operator });
    expect(verified.json()).toMatchObject({ ok: true });

    expect(await eventsOf(firm, 'signing_key.rotate')).toEqual([]);
    for (const url of ['/v1/admin/audit/events', '/v1/admin/audit/verify']) {
      const asFirm = await stack.app.inject({ method: 'GET', url, headers: firm.auth });
      expect(asFirm.statusCode, url).toBe(401);
    }
  });
});
