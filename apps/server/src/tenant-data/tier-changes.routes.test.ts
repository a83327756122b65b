import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenant, operatorKey, problemOf, startTestStack, type TestStack } from '../../test/harness.ts';
import { eventually } from '../jobs/jobs.test-support.ts';
import { createJobWorker, type JobWorker } from '../jobs/jobs.worker.ts';
import { createLogger } from '../platform/logger.ts';
import { defaultTiersFile } from '../tenancy/tiers.ts';
import { progressBar, runTenantDataCommand } from './tenant-data.cli.ts';
import { tierChangeKind } from './tenant-data.service.ts';

/**
 * The tier-change API: bad requests get clear errors and start nothing (unknown tier, the
 * current tier, a model this deployment cannot place, a second change while one is queued,
 * even when both race); a change between two pool tiers runs as a job to `succeeded`, with
 * phase and progress readable, and the registry shows the new tier.
 */
let stack: TestStack;
let tiersDirectory: string;
let worker: JobWorker | null = null;
const operator = { authorization: `Bearer ${operatorKey}` };

beforeAll(async () => {
  // The shipped tiers, plus a second pool tier and a silo tier (this stack has no silo cluster).
  const shipped = JSON.parse(await fs.readFile(defaultTiersFile, 'utf8')) as {
    tiers: Record<string, Record<string, unknown>>;
  };
  const starter = shipped.tiers.starter;
  if (!starter) throw new Error('the shipped catalogue has no starter tier');
  const tiers = {
    tiers: {
      ...shipped.tiers,
      growth: { ...starter, description: 'A second pool tier.' },
      dedicated: { ...starter, description: 'A silo tier.', isolation: 'silo' },
    },
  };
  tiersDirectory = await fs.mkdtemp(path.join(os.tmpdir(), 'countinghouse-tiers-'));
  const tiersFile = path.join(tiersDirectory, 'tiers.json');
  await fs.writeFile(tiersFile, JSON.stringify(tiers));
  stack = await startTestStack({ config: { tiersFile, siloClusters: [] } });
});

afterAll(async () => {
  await worker?.stop();
  await stack.close();
  await fs.rm(tiersDirectory, { recursive: true, force: true });
});

async function requestChange(tenantId: string, tier: string) {
  return await stack.app.inject({
    method: 'POST',
    url: `/v1/tenants/${tenantId}/tier-changes`,
    headers: operator,
    payload: { tier },
  });
}

describe('tier changes', () => {
  it('refuses an unknown tier, the current tier and a tier this deployment cannot place', async () => {
    const firm = await createTenant(stack.app, 'Tiers');
    expect(problemOf(await requestChange(firm.id, 'platinum')).body.code).toBe('TENANT_UNKNOWN_TIER');
    expect(problemOf(await requestChange(firm.id, 'starter')).body.code).toBe('TIER_CHANGE_SAME_TIER');
    // This stack has no silo cluster, so a silo tier cannot be placed.
    expect(problemOf(await requestChange(firm.id, 'dedicated')).body.code).toBe('TIER_CHANGE_PLACEMENT_UNAVAILABLE');
    const malformed = await stack.app.inject({
      method: 'POST',
      url: `/v1/tenants/${firm.id}/tier-changes`,
      headers: operator,
      payload: { tier: 'growth', extra: true },
    });
    expect(problemOf(malformed).body.code).toBe('REQUEST_VALIDATION_FAILED');
    const anonymous = await stack.app.inject({
      method: 'POST',
      url: `/v1/tenants/${firm.id}/tier-changes`,
      payload: { tier: 'growth' },
    });
    expect(anonymous.statusCode).toBe(401);
  });

  it('starts one change when two race for the same tenant, and refuses the other', async () => {
    const firm = await createTenant(stack.app, 'Racing');
    const [first, second] = await Promise.all([requestChange(firm.id, 'growth'), requestChange(firm.id, 'growth')]);
    expect([first?.statusCode, second?.statusCode].sort()).toEqual([202, 409]);
    const refused = first?.statusCode === 409 ? first : second;
    if (refused) expect(problemOf(refused).body.code).toBe('TIER_CHANGE_IN_PROGRESS');
    const third = await requestChange(firm.id, 'growth');
    expect(problemOf(third).body.code).toBe('TIER_CHANGE_IN_PROGRESS');
  });

  it('runs a change between two pool tiers to success, with phase and progress readable', async () => {
    worker = createJobWorker(stack.platform, createLogger('silent'), { kinds: [tierChangeKind], pollMs: 50 });
    worker.start();
    const firm = await createTenant(stack.app, 'Growing');
    const accepted = await requestChange(firm.id, 'growth');
    expect(accepted.statusCode, accepted.body).toBe(202);
    const change = accepted.json<{ id: string; status: string; phase: string }>();
    expect(change).toMatchObject({ status: 'queued', phase: 'queued' });
    expect(accepted.headers.location).toBe(`/v1/tenants/${firm.id}/tier-changes/${change.id}`);
    const done = await eventually(async () => {
      const read = await stack.app.inject({
        method: 'GET',
        url: `/v1/tenants/${firm.id}/tier-changes/${change.id}`,
        headers: operator,
      });
      const body = read.json<{ status: string; phase: string; progress: { percent: number }; result: unknown }>();
      return body.status === 'succeeded' || body.status === 'failed' ? body : undefined;
    });
    expect(done).toMatchObject({ status: 'succeeded', phase: 'done', progress: { percent: 100 } });
    const tenant = await stack.app.inject({ method: 'GET', url: `/v1/tenants/${firm.id}`, headers: operator });
    expect(tenant.json<{ tier: string }>().tier).toBe('growth');
    // The tenant keeps working on its new tier.
    const entities = await stack.app.inject({ method: 'GET', url: '/v1/entities', headers: firm.auth });
    expect(entities.statusCode).toBe(200);
    const unknown = await stack.app.inject({
      method: 'GET',
      url: `/v1/tenants/${firm.id}/tier-changes/tch_${'0'.repeat(32)}`,
      headers: operator,
    });
    expect(problemOf(unknown).body.code).toBe('TIER_CHANGE_NOT_FOUND');
  });

  it('is followed by the CLI to its end with a progress bar', async () => {
    const address = await stack.app.listen({ host: '127.0.0.1', port: 0 });
    const firm = await createTenant(stack.app, 'Cli');
    const printed: string[] = [];
    const code = await runTenantDataCommand(
      'tier-change',
      [firm.id, 'growth'],
      { baseUrl: address, operatorKey },
      { stdout: (text) => printed.push(text), stderr: (text) => printed.push(text) },
      { pollMs: 50, pollsMax: 400 },
    );
    expect(code, printed.join('')).toBe(0);
    expect(printed.join('')).toMatch(/\[#{30}\] 100% {2}done/);
    expect(printed.at(-1)).toContain(`tenant ${firm.id} is on tier growth`);
    const refused: string[] = [];
    const again = await runTenantDataCommand(
      'tier-change',
      [firm.id, 'growth'],
      { baseUrl: address, operatorKey },
      { stdout: (text) => refused.push(text), stderr: (text) => refused.push(text) },
    );
    expect(again).toBe(1);
    expect(refused.join('')).toContain('TIER_CHANGE_SAME_TIER');
  });

  it('draws the bar from rows copied of total', () => {
    expect(progressBar('copying', 330_000, 1_000_000)).toBe(
      `[${'#'.repeat(10)}${'.'.repeat(20)}]  33%  copying        330,000 / 1,000,000 rows`,
    );
  });
});
