import { randomBytes } from 'node:crypto';
import pg from 'pg';
import pino from 'pino';
import { afterAll, afterEach, describe, expect, inject, it } from 'vitest';
import { uniqueInteractiveChannel } from '../../test/harness.ts';
import { InteractiveSignal } from './interactive-signal.ts';

/**
 * Interactive load across instances, on the real PostgreSQL: an instance's announcement
 * reaches the others on the control database and makes them busy for the window, never
 * itself; announcements are at most one per interval; a lost listening connection counts as
 * busy (batch work stays paced), raises the alert, and comes back on its own. Each test uses
 * a channel of its own, so instances of other test files on the same database never reach it.
 */
const ownerUrl = inject('ownerUrl');
const log = pino({ level: 'silent' });
const announcer = new pg.Pool({ connectionString: ownerUrl, max: 2 });
const signals: InteractiveSignal[] = [];
const windowMs = 1_000;

async function signal(onChannel: string, options: { announceEveryMs?: number; url?: string } = {}) {
  const made = new InteractiveSignal({
    connectionString: options.url ?? ownerUrl,
    announcer,
    instanceId: randomBytes(8).toString('hex'),
    log,
    announceEveryMs: options.announceEveryMs ?? 250,
    reconnectMsMax: 1_000,
    channel: onChannel,
  });
  signals.push(made);
  await made.start();
  return made;
}

/** A plain listener on the channel: every announcement, as its payload (the announcing instance). */
async function eavesdrop(onChannel: string): Promise<{ heard: string[]; close: () => Promise<void> }> {
  const client = new pg.Client({ connectionString: ownerUrl });
  const heard: string[] = [];
  client.on('notification', (message) => heard.push(message.payload ?? ''));
  await client.connect();
  await client.query(`listen ${onChannel}`);
  return { heard, close: () => client.end() };
}

afterEach(async () => {
  await Promise.all(signals.splice(0).map((made) => made.close()));
});

afterAll(async () => {
  await announcer.end();
});

describe('interactive load across instances', () => {
  it('makes the other instances busy for the window after an announcement, and never the announcer itself', async () => {
    const name = uniqueInteractiveChannel();
    const api = await signal(name);
    const worker = await signal(name);
    expect(worker.busyElsewhere(windowMs)).toBe(false);
    expect(worker.alerts()).toEqual([]);
    api.announce();
    await expect.poll(() => worker.busyElsewhere(windowMs), { timeout: 5_000 }).toBe(true);
    expect(api.busyElsewhere(windowMs)).toBe(false);
    // The window runs from the last announcement heard: a short one has already passed.
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(worker.busyElsewhere(50)).toBe(false);
  });

  it('announces at most once per interval however many requests come in', async () => {
    const name = uniqueInteractiveChannel();
    const listener = await eavesdrop(name);
    try {
      const api = await signal(name, { announceEveryMs: 300 });
      for (let index = 0; index < 50; index++) api.announce();
      await expect.poll(() => listener.heard.length, { timeout: 5_000 }).toBe(1);
      await new Promise((resolve) => setTimeout(resolve, 350));
      for (let index = 0; index < 50; index++) api.announce();
      await expect.poll(() => listener.heard.length, { timeout: 5_000 }).toBe(2);
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(listener.heard).toHaveLength(2);
    } finally {
      await listener.close();
    }
  });

  it('counts a lost listening connection as busy, raises the alert, and recovers by itself', async () => {
    const name = uniqueInteractiveChannel();
    const worker = await signal(name);
    const api = await signal(name);
    expect(worker.busyElsewhere(windowMs)).toBe(false);
    // End the worker's listening session from outside, as a failover or an idle-session reaper would.
    const { rows } = await announcer.query<{ ended: boolean }>(
      `select pg_terminate_backend(pid) as ended from pg_stat_activity
        where application_name like 'countinghouse-signal-%' and query = $1`,
      [`listen ${name}`],
    );
    expect(rows.filter((row) => row.ended).length).toBe(2);
    await expect
      .poll(() => worker.alerts().map((alert) => alert.code), { timeout: 5_000 })
      .toEqual(['INTERACTIVE_SIGNAL_LOST']);
    expect(worker.busyElsewhere(windowMs)).toBe(true);
    // Reconnected within the backoff: not busy, no alert, and announcements reach it again.
    await expect.poll(() => worker.alerts(), { timeout: 10_000 }).toEqual([]);
    await expect.poll(() => api.alerts(), { timeout: 10_000 }).toEqual([]);
    expect(worker.busyElsewhere(windowMs)).toBe(false);
    api.announce();
    await expect.poll(() => worker.busyElsewhere(windowMs), { timeout: 5_000 }).toBe(true);
  });

  it('starts even when the database cannot be reached, busy and alerting, and stops retrying when closed', async () => {
    const closed = new URL(ownerUrl);
    closed.port = '1';
    const unreachable = await signal(uniqueInteractiveChannel(), { url: closed.toString() });
    expect(unreachable.busyElsewhere(windowMs)).toBe(true);
    expect(unreachable.alerts()).toMatchObject([{ code: 'INTERACTIVE_SIGNAL_LOST' }]);
    await unreachable.close();
    expect(unreachable.busyElsewhere(windowMs)).toBe(true);
  });
});
