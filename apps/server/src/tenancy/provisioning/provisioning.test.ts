import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  adminPassword,
  dropTenantDatabases,
  operatorKey,
  problemOf,
  startTestStack,
  type TestStack,
  uniqueName,
} from '../../../test/harness.ts';
import { formatId, parseId } from '../../platform/ids.ts';
import { onboardingEventId } from './provisioning.steps.ts';
import { type ProvisioningStepName, provisioningSteps } from './provisioning.types.ts';

/**
 * Onboarding as code: the plan mode writes nothing; a finished plan applied again changes
 * nothing; and a crash injected just before or just after every step's effect, for a pooled
 * and a bridge tenant, is repaired by applying the plan again — ending in exactly the state a
 * clean onboarding leaves (one admin who can sign in, one onboarding usage event, the
 * database, every step done, the password hash gone).
 */
let stack: TestStack;
let crashAt: { step: ProvisioningStepName; phase: 'before' | 'after' } | null = null;
const created: string[] = [];
const operator = { authorization: `Bearer ${operatorKey}` };

class InjectedCrash extends Error {
  override name = 'InjectedCrash';
}

beforeAll(async () => {
  stack = await startTestStack({
    provisioningFaults: (step, phase) => {
      if (crashAt?.step === step && crashAt.phase === phase) throw new InjectedCrash(`${phase} ${step}`);
    },
  });
});

afterAll(async () => {
  crashAt = null;
  if (stack) await dropTenantDatabases(stack.platform, created);
  await stack?.close();
});

function body(name: string, tier: string, extra: object = {}) {
  const email = `admin@${name.toLowerCase().replace(/[^a-z0-9]/g, '')}.test`;
  return { name, tier, admin: { email, password: adminPassword }, ...extra };
}

async function post(url: string, payload?: object) {
  return await stack.app.inject({ method: 'POST', url, headers: operator, ...(payload ? { payload } : {}) });
}

async function tenantsNamed(name: string): Promise<string[]> {
  const { rows } = await stack.platform.ownerPool.query<{ id: string }>(
    'select id from tenants where lower(name) = lower($1)',
    [name],
  );
  return rows.map((row) => row.id);
}

/** Everything a finished onboarding leaves behind, read from the databases. */
async function stateOf(publicId: string, email: string) {
  const id = parseId('tenant', publicId) ?? '';
  const record = await stack.platform.tenancy.getTenant(id);
  if (!record) throw new Error(`no tenant ${publicId}`);
  const users = await stack.platform.scopes.run(
    { tenantId: id, tier: record.tier, placement: record.placement, entityScope: { kind: 'all' } },
    async (db) => (await db.query<{ email: string }>('select email from users')).rows.map((row) => row.email),
  );
  const { rows: events } = await stack.platform.ownerPool.query<{ count: number }>(
    'select count(*)::int as count from usage_events where tenant = $1 and id = $2',
    [id, onboardingEventId(id)],
  );
  const { rows: provisioning } = await stack.platform.ownerPool.query<{ hash: string | null; finished: boolean }>(
    'select admin_password_hash as hash, finished_at is not null as finished from tenant_provisioning where tenant = $1',
    [id],
  );
  const steps = await stack.platform.tenancy.provisioningSteps(id);
  const signIn = await stack.app.inject({
    method: 'POST',
    url: '/v1/auth/token',
    payload: { tenantId: publicId, email, password: adminPassword },
  });
  return {
    status: record.status,
    users,
    onboardingEvents: events[0]?.count,
    passwordHashKept: provisioning[0]?.hash !== null,
    finished: provisioning[0]?.finished,
    steps: steps.map((step) => `${step.step}:${step.status}`),
    databaseExists:
      record.placement.model === 'pool' ? true : await stack.platform.clusters.databaseExists(record.placement),
    signIn: signIn.statusCode,
  };
}

function finishedState(email: string) {
  return {
    status: 'active',
    users: [email],
    onboardingEvents: 1,
    passwordHashKept: false,
    finished: true,
    steps: provisioningSteps.map((step) => `${step}:done`),
    databaseExists: true,
    signIn: 200,
  };
}

describe('plan mode', () => {
  it('returns the ordered steps for each tier and writes nothing', async () => {
    // Proves dryRun: 200 with the eight named steps and the placement the tier implies; no registry row.
    for (const [tier, model] of [
      ['starter', 'pool'],
      ['professional', 'bridge'],
      ['enterprise', 'silo'],
    ] as const) {
      const name = uniqueName('Plan Only');
      const response = await post('/v1/tenants?dryRun=true', body(name, tier));
      expect(response.statusCode, response.body).toBe(200);
      const plan = response.json<{ tenant: { placement: { model: string } }; steps: Array<{ step: string }> }>();
      expect(plan.tenant.placement.model).toBe(model);
      expect(plan.steps.map((step) => step.step)).toEqual([...provisioningSteps]);
      expect(await tenantsNamed(name)).toEqual([]);
    }
  });

  it('refuses what onboarding would refuse: an unknown tier, a taken name, invalid plan overrides', async () => {
    // Proves the plan runs the same checks as a real onboarding, so a clean plan means the apply can start.
    const taken = await post('/v1/tenants', body(uniqueName('Plan Taken'), 'starter'));
    expect(taken.statusCode).toBe(201);
    const takenName = taken.json<{ name: string }>().name;
    const cases = [
      { payload: body(uniqueName('Plan Tier'), 'platinum'), code: 'TENANT_UNKNOWN_TIER', status: 400 },
      { payload: body(takenName.toUpperCase(), 'starter'), code: 'TENANT_NAME_TAKEN', status: 409 },
      {
        payload: body(uniqueName('Plan Bad Plan'), 'starter', {
          plan: { usagePlan: { ratePerSecond: 50, burst: 10 } },
        }),
        code: 'PLAN_OVERRIDES_INVALID',
        status: 400,
      },
    ];
    for (const testCase of cases) {
      const problem = problemOf(await post('/v1/tenants?dryRun=true', testCase.payload));
      expect(problem.body).toMatchObject({ code: testCase.code, status: testCase.status });
      const real = problemOf(await post('/v1/tenants', testCase.payload));
      expect(real.body).toMatchObject({ code: testCase.code, status: testCase.status });
    }
    expect(await tenantsNamed(cases[0]?.payload.name ?? '')).toEqual([]);
    expect(await tenantsNamed(cases[2]?.payload.name ?? '')).toEqual([]);
  });
});

describe('applying a plan', () => {
  it('applied twice equals applied once, for a pooled and a bridge tenant', async () => {
    // Proves idempotence: the state after a second apply equals the state after the first, and the
    // second apply's outcomes say it found everything in place.
    for (const tier of ['starter', 'professional']) {
      const payload = body(uniqueName('Twice'), tier);
      const response = await post('/v1/tenants', payload);
      expect(response.statusCode, response.body).toBe(201);
      const id = response.json<{ id: string }>().id;
      created.push(id);
      const once = await stateOf(id, payload.admin.email);
      expect(once).toEqual(finishedState(payload.admin.email));
      const again = await post(`/v1/tenants/${id}/provisioning`);
      expect(again.statusCode, again.body).toBe(200);
      expect(await stateOf(id, payload.admin.email)).toEqual(once);
      const steps = again.json<{ provisioning: { steps: Array<{ outcome: string; attempts: number }> } }>().provisioning
        .steps;
      expect(steps.every((step) => step.attempts === 2)).toBe(true);
      expect(steps.map((step) => step.outcome)).not.toContain('created');
    }
  });

  it('stores per-tenant plan overrides given at onboarding', async () => {
    // Proves the usage-plan step's input: the operator's plan view shows the overrides on the tier.
    const response = await post(
      '/v1/tenants',
      body(uniqueName('Overrides'), 'starter', { plan: { usagePlan: { ratePerSecond: 7, burst: 9 } } }),
    );
    expect(response.statusCode, response.body).toBe(201);
    const plan = await stack.app.inject({
      method: 'GET',
      url: `/v1/tenants/${response.json<{ id: string }>().id}/plan`,
      headers: operator,
    });
    expect(plan.json()).toMatchObject({ overrides: { usagePlan: { ratePerSecond: 7, burst: 9 } } });
  });

  for (const tier of ['starter', 'professional']) {
    it(`converges on re-apply after a crash before or after every step (${tier})`, async () => {
      // Proves resumability: for each of 16 crash points the onboarding fails with 503
      // TENANT_PROVISIONING_FAILED naming the step (or, before the registry row exists, leaves
      // nothing and is simply retried), and one more apply reaches the clean state.
      for (const step of provisioningSteps) {
        for (const phase of ['before', 'after'] as const) {
          const payload = body(uniqueName(`Crash ${step} ${phase}`), tier);
          crashAt = { step, phase };
          const failed = problemOf(await post('/v1/tenants', payload));
          crashAt = null;
          expect(failed.status, `${step} ${phase}`).toBe(503);
          expect(failed.body).toMatchObject({ code: 'TENANT_PROVISIONING_FAILED' });
          const registered = await tenantsNamed(payload.name);
          let publicId: string;
          if (step === 'registry' && phase === 'before') {
            expect(registered).toEqual([]);
            const retried = await post('/v1/tenants', payload);
            expect(retried.statusCode, retried.body).toBe(201);
            publicId = retried.json<{ id: string }>().id;
          } else {
            expect(registered).toHaveLength(1);
            publicId = formatId('tenant', registered[0] ?? '');
            expect(failed.body).toMatchObject({ tenantId: publicId, step });
            const detail = await stack.app.inject({ method: 'GET', url: `/v1/tenants/${publicId}`, headers: operator });
            expect(detail.json()).toMatchObject({
              status: step === 'activate' && phase === 'after' ? 'active' : 'provisioning',
            });
            const repaired = await post(`/v1/tenants/${publicId}/provisioning`);
            expect(repaired.statusCode, `${step} ${phase}: ${repaired.body}`).toBe(200);
          }
          created.push(publicId);
          expect(await stateOf(publicId, payload.admin.email), `${step} ${phase}`).toEqual(
            finishedState(payload.admin.email),
          );
        }
      }
    }, 240_000);
  }

  it('answers 404 when re-applying an unknown tenant', async () => {
    const problem = problemOf(
      await post(`/v1/tenants/${formatId('tenant', '0190a000-0000-7000-8000-000000000000')}/provisioning`),
    );
    expect(problem.body).toMatchObject({ code: 'TENANT_NOT_FOUND', status: 404 });
  });
});
