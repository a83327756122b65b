import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenant, startTestStack, type TestStack, type TestTenant } from '../../test/harness.ts';
import type { TenantContext } from '../platform/database/tenant-scope.ts';
import { parseId } from '../platform/ids.ts';
import { tenantContextOf } from '../tenancy/tenancy.service.ts';
import { recordAuditEvent } from './audit.service.ts';

/**
 * The audit log in the database: appends form unbroken chains (lanes) per tenant even under
 * concurrent writers, a writer never waits for another while a lane is free, a transaction
 * keeps to one lane, a rolled-back change leaves no event, the runtime role cannot change
 * or remove events, and the owner is refused by the trigger — and when the owner disables
 * the trigger to alter, delete or reorder events, verification names the broken link.
 */
let stack: TestStack;

async function contextOf(tenant: TestTenant): Promise<TenantContext> {
  const uuid = parseId('tenant', tenant.id);
  if (uuid === null) throw new Error('bad tenant id');
  const record = await stack.platform.tenancy.getTenant(uuid);
  if (record === null) throw new Error('tenant vanished');
  return tenantContextOf(record);
}

async function recordLinked(tenant: TenantContext, action: string, note = ''): Promise<{ lane: number; seq: bigint }> {
  return await stack.platform.scopes.run(tenant, async (db) => {
    const { lane, seq } = await recordAuditEvent(db, { action, summary: { note }, after: { note } });
    return { lane, seq };
  });
}

/** The seq of an event recorded alone: a lone writer always links into lane 0. */
async function record(tenant: TenantContext, action: string, note = ''): Promise<bigint> {
  const { lane, seq } = await recordLinked(tenant, action, note);
  expect(lane).toBe(0);
  return seq;
}

/**
 * Runs `sql` as the owner role in the tenant's setting, inside one transaction; with a
 * trigger named, that trigger is off for that transaction only (DDL is transactional, so
 * other sessions never see it off).
 */
async function asOwner(
  tenant: TenantContext,
  sql: string,
  disable: { table: string; trigger: string } | null,
): Promise<void> {
  const client = await stack.platform.ownerPool.connect();
  try {
    await client.query('begin');
    await client.query(`select set_config('app.tenant_id', $1, true)`, [tenant.tenantId]);
    if (disable) await client.query(`alter table ${disable.table} disable trigger ${disable.trigger}`);
    await client.query(sql, [tenant.tenantId]);
    if (disable) await client.query(`alter table ${disable.table} enable trigger ${disable.trigger}`);
    await client.query('commit');
  } catch (error) {
    await client.query('rollback');
    throw error;
  } finally {
    client.release();
  }
}

/** Alters audit events as the owner with the append-only trigger off. */
async function tamper(tenant: TenantContext, sql: string): Promise<void> {
  await asOwner(tenant, sql, { table: 'audit_events', trigger: 'audit_events_append_only' });
}

async function eventIdAt(tenant: TenantContext, seq: number): Promise<string> {
  const rows = await stack.platform.scopes.run(tenant, (db) =>
    db.query<{ id: string }>('select id from audit_events where seq = $1', [seq]),
  );
  const id = rows.rows[0]?.id;
  if (id === undefined) throw new Error(`no event at seq ${seq}`);
  return id;
}

beforeAll(async () => {
  stack = await startTestStack();
});

afterAll(async () => {
  await stack?.close();
});

describe('audit chain', () => {
  it('links concurrent appends of one tenant into gap-free lanes', async () => {
    const tenant = await contextOf(await createTenant(stack.app, 'Audit concurrent'));
    const writers = 24;
    // Onboarding wrote tenant.create and the owner's sign-in; the writers follow the head.
    const head = await record(tenant, 'test.write', 'head');
    const linked = await Promise.all(
      Array.from({ length: writers }, (_, index) => recordLinked(tenant, 'test.write', `w${index}`)),
    );
    // In every lane the writers follow that lane's head without a gap or a duplicate.
    const byLane = new Map<number, { lane: number; seq: bigint }[]>();
    for (const link of linked) byLane.set(link.lane, [...(byLane.get(link.lane) ?? []), link]);
    for (const [lane, links] of byLane) {
      const seqs = links.map((link) => link.seq).sort((left, right) => Number(left - right));
      const first = lane === 0 ? head + 1n : 1n;
      expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, index) => first + BigInt(index)));
    }
    const verification = await stack.platform.audit.verify(tenant);
    expect(verification).toMatchObject({ ok: true, eventsChecked: Number(head) + writers });
    expect(verification.heads.map((laneHead) => laneHead.lane)).toEqual([...byLane.keys()].sort((a, b) => a - b));
  });

  it('lets a second writer link into another lane while the first holds lane 0', async () => {
    const tenant = await contextOf(await createTenant(stack.app, 'Audit lanes'));
    const head = await record(tenant, 'test.write', 'head');
    let releaseFirst: () => void = () => {};
    const firstHolds = new Promise<void>((resolve) => {
      releaseFirst = resolve;
    });
    let firstLinked: (value: { lane: number; seq: bigint }) => void = () => {};
    const firstAppended = new Promise<{ lane: number; seq: bigint }>((resolve) => {
      firstLinked = resolve;
    });
    const first = stack.platform.scopes.run(tenant, async (db) => {
      const linked = await recordAuditEvent(db, { action: 'test.write', summary: { note: 'first' } });
      firstLinked(linked);
      await firstHolds;
      // A second event of the same transaction stays in its lane, the next link.
      const again = await recordAuditEvent(db, { action: 'test.write', summary: { note: 'first again' } });
      return [linked, again];
    });
    expect(await firstAppended).toMatchObject({ lane: 0, seq: head + 1n });
    // The first transaction is still open, holding lane 0: the second does not wait for it.
    const second = await recordLinked(tenant, 'test.write', 'second');
    expect(second).toEqual({ lane: 1, seq: 1n });
    releaseFirst();
    const [firstEvent, firstAgain] = await first;
    expect(firstAgain).toMatchObject({ lane: firstEvent?.lane, seq: head + 2n });
    const verification = await stack.platform.audit.verify(tenant);
    expect(verification).toMatchObject({ ok: true, eventsChecked: Number(head) + 3 });
    expect(verification.heads.map(({ lane, seq }) => ({ lane, seq }))).toEqual([
      { lane: 0, seq: head + 2n },
      { lane: 1, seq: 1n },
    ]);
    // Listing is in time order across lanes.
    const page = await stack.platform.audit.list(tenant, { action: 'test.write' }, null, 100);
    expect(page.items.map((event) => event.summary?.note)).toEqual(['head', 'first', 'second', 'first again']);
  });

  it('leaves no event and no head movement when the change rolls back', async () => {
    const tenant = await contextOf(await createTenant(stack.app, 'Audit rollback'));
    const before = await record(tenant, 'test.write');
    await expect(
      stack.platform.scopes.run(tenant, async (db) => {
        await recordAuditEvent(db, { action: 'test.write', summary: { note: 'rolled back' } });
        throw new Error('the change fails after recording');
      }),
    ).rejects.toThrow('the change fails after recording');
    const after = await record(tenant, 'test.write');
    expect(after).toBe(before + 1n);
    const page = await stack.platform.audit.list(tenant, { action: 'test.write' }, null, 100);
    expect(page.items.map((event) => event.summary?.note)).toEqual(['', '']);
    expect((await stack.platform.audit.verify(tenant)).ok).toBe(true);
  });

  it('keeps each tenant to its own events and chain', async () => {
    const first = await contextOf(await createTenant(stack.app, 'Audit A'));
    const second = await contextOf(await createTenant(stack.app, 'Audit B'));
    await record(first, 'test.private', 'only A');
    const seen = await stack.platform.audit.list(second, { action: 'test.private' }, null, 100);
    expect(seen.items).toEqual([]);
    // Writing an event that names another tenant is refused by row-level security.
    await expect(
      stack.platform.scopes.run(second, (db) =>
        recordAuditEvent({ ...db, tenantId: first.tenantId }, { action: 'test.forged' }),
      ),
    ).rejects.toMatchObject({ code: '42501' });
    expect((await stack.platform.audit.verify(first)).ok).toBe(true);
    expect((await stack.platform.audit.verify(second)).ok).toBe(true);
  });

  it('gives the runtime role no way to change or remove an event', async () => {
    const tenant = await contextOf(await createTenant(stack.app, 'Audit runtime'));
    for (const sql of [
      `update audit_events set action = 'x.y'`,
      'delete from audit_events',
      'truncate audit_events',
      'delete from audit_chain_heads',
    ]) {
      await expect(stack.platform.scopes.run(tenant, (db) => db.query(sql))).rejects.toMatchObject({ code: '42501' });
    }
    // The runtime role may advance the head, but only by one link.
    await expect(
      stack.platform.scopes.run(tenant, (db) => db.query('update audit_chain_heads set seq = seq + 5')),
    ).rejects.toMatchObject({ code: 'CH009' });
  });

  it('refuses the owner too, while the trigger is on', async () => {
    const tenant = await contextOf(await createTenant(stack.app, 'Audit owner'));
    for (const sql of [
      `update audit_events set action = 'x.y' where tenant_id = $1`,
      'delete from audit_events where tenant_id = $1',
    ]) {
      await expect(asOwner(tenant, sql, null)).rejects.toMatchObject({ code: 'CH009' });
    }
    await expect(stack.platform.ownerPool.query('truncate audit_events')).rejects.toMatchObject({ code: 'CH009' });
  });
});

describe('audit verification names the first broken link', () => {
  async function tenantWithEvents(prefix: string, count: number): Promise<TenantContext> {
    const tenant = await contextOf(await createTenant(stack.app, prefix));
    for (let index = 0; index < count; index += 1) await record(tenant, 'test.write', `e${index}`);
    expect((await stack.platform.audit.verify(tenant)).ok).toBe(true);
    return tenant;
  }

  it('an altered event', async () => {
    const tenant = await tenantWithEvents('Audit altered', 5);
    const id = await eventIdAt(tenant, 3);
    await tamper(tenant, `update audit_events set actor_id = 'usr_someone_else' where tenant_id = $1 and seq = 3`);
    const verification = await stack.platform.audit.verify(tenant);
    expect(verification).toMatchObject({
      ok: false,
      eventsChecked: 2,
      brokenLink: { seq: 3n, id, problem: 'altered' },
    });
  });

  it('an altered summary', async () => {
    const tenant = await tenantWithEvents('Audit summary', 4);
    await tamper(tenant, `update audit_events set summary = '{"note": "changed"}' where tenant_id = $1 and seq = 4`);
    const verification = await stack.platform.audit.verify(tenant);
    expect(verification).toMatchObject({ ok: false, brokenLink: { seq: 4n, problem: 'altered' } });
  });

  it('a deleted event', async () => {
    const tenant = await tenantWithEvents('Audit deleted', 5);
    await tamper(tenant, 'delete from audit_events where tenant_id = $1 and seq = 4');
    const verification = await stack.platform.audit.verify(tenant);
    expect(verification).toMatchObject({
      ok: false,
      eventsChecked: 3,
      brokenLink: { seq: 4n, id: null, problem: 'missing' },
    });
  });

  it('deleted events at the end of the chain', async () => {
    const tenant = await tenantWithEvents('Audit tail', 5);
    await tamper(tenant, 'delete from audit_events where tenant_id = $1 and seq >= 5');
    const verification = await stack.platform.audit.verify(tenant);
    expect(verification).toMatchObject({ ok: false, eventsChecked: 4, brokenLink: { seq: 5n, problem: 'missing' } });
  });

  it('two events swapped', async () => {
    const tenant = await tenantWithEvents('Audit swapped', 5);
    const movedId = await eventIdAt(tenant, 4);
    await tamper(
      tenant,
      `update audit_events set seq = case seq when 3 then 1000 when 4 then 3 end where tenant_id = $1 and seq in (3, 4)`,
    );
    const verification = await stack.platform.audit.verify(tenant);
    expect(verification).toMatchObject({
      ok: false,
      eventsChecked: 2,
      brokenLink: { seq: 3n, id: movedId, problem: 'reordered' },
    });
  });

  it('an altered event in a second lane, and a lane whose head is gone', async () => {
    const tenant = await tenantWithEvents('Audit second lane', 2);
    // Hold lane 0 open so two events link into lane 1.
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let appended: () => void = () => {};
    const holding = new Promise<void>((resolve) => {
      appended = resolve;
    });
    const holder = stack.platform.scopes.run(tenant, async (db) => {
      await recordAuditEvent(db, { action: 'test.write' });
      appended();
      await held;
    });
    await holding;
    expect(await recordLinked(tenant, 'test.write', 'l1')).toMatchObject({ lane: 1, seq: 1n });
    expect(await recordLinked(tenant, 'test.write', 'l1')).toMatchObject({ lane: 1, seq: 2n });
    release();
    await holder;
    expect((await stack.platform.audit.verify(tenant)).ok).toBe(true);

    await tamper(tenant, `update audit_events set action = 'test.other' where tenant_id = $1 and lane = 1 and seq = 2`);
    expect(await stack.platform.audit.verify(tenant)).toMatchObject({
      ok: false,
      brokenLink: { lane: 1, seq: 2n, problem: 'altered' },
    });

    const untouched = await tenantWithEvents('Audit lost head', 2);
    await asOwner(untouched, 'delete from audit_chain_heads where tenant_id = $1', {
      table: 'audit_chain_heads',
      trigger: 'audit_chain_heads_no_delete',
    });
    expect(await stack.platform.audit.verify(untouched)).toMatchObject({
      ok: false,
      heads: [],
      brokenLink: { lane: 0, id: null, problem: 'missing', detail: 'the chain head is gone' },
    });
  });
});
