import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTenant,
  createUnthrottledTenant,
  startTestStack,
  type TestStack,
  type TestTenant,
} from '../../test/harness.ts';
import { installErrorHandling } from '../platform/http/error-handling.ts';
import type { App } from '../platform/http/http-types.ts';
import { formatId, type IdKind, newUuid } from '../platform/ids.ts';
import { type Action, accessTable, apiKeyMay, isAction, type Role, roleMay, roles } from './access.ts';
import { authPlugin, type RegisteredRoute } from './auth.plugin.ts';
import { addMember, createEntity, type TestMember } from './identity.test-support.ts';

/**
 * Every role against every route, table-driven from the live route registry: a route added
 * anywhere joins the table by being registered. For each tenant route, each role's request
 * is refused with 403 AUTH_FORBIDDEN exactly when the access table says the role may not
 * perform the route's action; no tenant route may lack an action (fail closed). Then the
 * database-held entity scope: staff and client users reach only their assigned entities,
 * and nobody reaches another firm's.
 */
let stack: TestStack;
let firm: TestTenant;
let other: TestTenant;
let entityA: string;
let entityB: string;
let otherEntity: string;
const members = new Map<Role, TestMember>();

beforeAll(async () => {
  stack = await startTestStack();
  firm = await createUnthrottledTenant(stack.app, 'Access');
  other = await createTenant(stack.app, 'Access Other');
  entityA = await createEntity(stack, firm, 'Assigned Client LLC');
  entityB = await createEntity(stack, firm, 'Unassigned Client LLC');
  otherEntity = await createEntity(stack, other, 'Other Firm Client LLC');
  members.set('owner', {
    userId: '',
    email: firm.email,
    role: 'owner',
    token: firm.token,
    refreshToken: null,
    auth: firm.auth,
  });
  for (const role of roles.filter((candidate) => candidate !== 'owner')) {
    const scoped = role === 'staff' || role === 'client';
    members.set(role, await addMember(stack, firm, role, scoped ? [entityA] : []));
  }
});

afterAll(async () => {
  await stack?.close();
});

const paramKinds: Record<string, IdKind> = {
  jobId: 'job',
  accountId: 'account',
  entryId: 'journalEntry',
  adjustmentId: 'adjustment',
  taskId: 'closeTask',
  userId: 'user',
  tenantId: 'tenant',
};

/** A concrete URL for a route pattern: the assigned entity, and well-formed ids that name nothing. */
function concreteUrl(pattern: string): string {
  return pattern.replace(/:([A-Za-z]+)/g, (_match, name: string) => {
    if (name === 'entityId') return entityA;
    if (name === 'period') return '2031-01';
    if (name === 'fiscalYear') return '2031';
    const kind = paramKinds[name];
    return kind ? formatId(kind, newUuid()) : 'x';
  });
}

function routesUnderTest(): RegisteredRoute[] {
  return stack.app.routeRegistry.filter(
    (route) => route.method !== 'HEAD' && route.method !== 'OPTIONS' && !route.url.startsWith('/docs'),
  );
}

async function call(route: { method: string; url: string }, auth: Record<string, string>) {
  return await stack.app.inject({
    method: route.method as 'GET',
    url: concreteUrl(route.url),
    headers: { ...auth, 'idempotency-key': newUuid() },
    ...(route.method === 'GET' || route.method === 'DELETE' ? {} : { payload: {} }),
  });
}

describe('the access table', () => {
  it('names only known roles and is read-only for auditors', () => {
    // Proves the table's own invariants: every rule names known roles; the auditor holds no write or admin action.
    for (const [action, rule] of Object.entries(accessTable)) {
      for (const role of rule.roles) expect(roles, action).toContain(role);
      if (rule.kind === 'write' || rule.kind === 'admin') expect(rule.roles, action).not.toContain('auditor');
    }
  });

  it('is declared by every tenant route: none answers AUTH_ACTION_UNDECLARED', async () => {
    // Proves fail-closed coverage: each registered route is called with the owner's token; a
    // tenant route without an action would answer 500 AUTH_ACTION_UNDECLARED.
    const routes = routesUnderTest();
    expect(routes.length).toBeGreaterThan(50);
    for (const route of routes) {
      if (route.url.endsWith('/events')) continue; // an event stream: covered by the role table below
      const response = await call(route, firm.auth);
      const code = response.headers['content-type']?.toString().includes('json') ? response.json().code : undefined;
      expect(code, `${route.method} ${route.url}`).not.toBe('AUTH_ACTION_UNDECLARED');
      if (route.permission !== undefined) expect(isAction(route.permission), route.url).toBe(true);
    }
  });

  it('refuses exactly the roles the table refuses, on every tenant route', async () => {
    // Proves role × route: for every route with an action and every role, 403 AUTH_FORBIDDEN
    // if and only if the access table denies that role the action.
    const tenantRoutes = routesUnderTest().filter((route) => route.permission !== undefined);
    expect(tenantRoutes.length).toBeGreaterThan(40);
    const mismatches: string[] = [];
    for (const route of tenantRoutes) {
      const action = route.permission as Action;
      for (const role of roles) {
        const member = members.get(role);
        if (!member) throw new Error(`no ${role}`);
        const response = await call(route, member.auth);
        const forbidden = response.statusCode === 403 && response.json().code === 'AUTH_FORBIDDEN';
        if (forbidden === roleMay(role, action)) {
          mismatches.push(
            `${role} ${route.method} ${route.url} (${action}): ${response.statusCode} ${response.body.slice(0, 120)}`,
          );
        }
      }
    }
    expect(mismatches).toEqual([]);
  });

  it('refuses exactly what a key scope may not do, on every tenant route, to read and write API keys', async () => {
    // Proves API key scope over the whole route table: 403 AUTH_FORBIDDEN if and only if
    // apiKeyMay denies the key's scope the route's action (admin and step-up actions always).
    const keys: Array<['read' | 'write', Record<string, string>]> = [];
    for (const scope of ['read', 'write'] as const) {
      const created = await stack.app.inject({
        method: 'POST',
        url: '/v1/api-keys',
        headers: firm.auth,
        payload: { name: `table ${scope}`, scope },
      });
      keys.push([scope, { authorization: `Bearer ${created.json<{ key: string }>().key}` }]);
    }
    const mismatches: string[] = [];
    for (const route of routesUnderTest().filter((candidate) => candidate.permission !== undefined)) {
      const action = route.permission as Action;
      for (const [scope, auth] of keys) {
        const response = await call(route, auth);
        const forbidden = response.statusCode === 403 && response.json().code === 'AUTH_FORBIDDEN';
        if (forbidden === apiKeyMay(scope, action)) {
          mismatches.push(`${scope} key ${route.method} ${route.url} (${action}): ${response.statusCode}`);
        }
      }
    }
    expect(mismatches).toEqual([]);
  });

  it('refuses an undeclared tenant route to everyone, the owner included', async () => {
    // Proves the hook fails closed: an app with the real auth plugin and one tenant route that
    // declares no action answers 500 AUTH_ACTION_UNDECLARED to the owner, and 401 to nobody.
    const probe = Fastify() as unknown as App;
    installErrorHandling(probe);
    await probe.register(authPlugin, {
      credentials: stack.platform.credentials,
      tenancy: stack.platform.tenancy,
      operators: stack.platform.operators,
    });
    await probe.register(async (scoped: App) => {
      scoped.addHook('onRequest', scoped.authenticateTenant);
      scoped.get('/v1/forgotten', async () => ({ reached: true }));
    });
    try {
      const owner = await probe.inject({ method: 'GET', url: '/v1/forgotten', headers: firm.auth });
      expect(owner.statusCode).toBe(500);
      expect(owner.json()).toMatchObject({ code: 'AUTH_ACTION_UNDECLARED' });
      const anonymous = await probe.inject({ method: 'GET', url: '/v1/forgotten' });
      expect(anonymous.statusCode).toBe(401);
      expect(probe.routeRegistry).toContainEqual({ method: 'GET', url: '/v1/forgotten', permission: undefined });
    } finally {
      await probe.close();
    }
  });
});

describe('the entity scope held by the database', () => {
  it('lets staff and client users reach their assigned entity and nothing else', async () => {
    // Proves least privilege per client: the assigned entity reads 200, the firm's other entity 404, and the list holds only the assigned one.
    for (const role of ['staff', 'client'] as const) {
      const member = members.get(role);
      if (!member) throw new Error(`no ${role}`);
      const own = await stack.app.inject({ method: 'GET', url: `/v1/entities/${entityA}`, headers: member.auth });
      expect(own.statusCode, role).toBe(200);
      const unassigned = await stack.app.inject({
        method: 'GET',
        url: `/v1/entities/${entityB}`,
        headers: member.auth,
      });
      expect(unassigned.statusCode, role).toBe(404);
      const list = await stack.app.inject({ method: 'GET', url: '/v1/entities', headers: member.auth });
      expect(list.json<{ items: Array<{ id: string }> }>().items.map((item) => item.id)).toEqual([entityA]);
      const accounts = await stack.app.inject({
        method: 'GET',
        url: `/v1/entities/${entityB}/accounts`,
        headers: member.auth,
      });
      expect(accounts.statusCode, role).toBe(404);
    }
  });

  it("lets staff change only their assigned entity's books", async () => {
    // Proves writes are scoped too: staff renaming the unassigned entity gets 404 and the name is unchanged.
    const staff = members.get('staff');
    if (!staff) throw new Error('no staff');
    const refused = await stack.app.inject({
      method: 'POST',
      url: `/v1/entities/${entityB}/accounts/from-template`,
      headers: { ...staff.auth, 'idempotency-key': newUuid() },
      payload: { template: 'us-small-business' },
    });
    expect(refused.statusCode).toBe(404);
  });

  it("gives firm-wide roles every entity, and nobody another firm's", async () => {
    // Proves firm-wide scope for owner/partner/manager/auditor and tenant isolation for all six roles.
    for (const role of roles) {
      const member = members.get(role);
      if (!member) throw new Error(`no ${role}`);
      const foreign = await stack.app.inject({
        method: 'GET',
        url: `/v1/entities/${otherEntity}`,
        headers: member.auth,
      });
      expect(foreign.statusCode, role).toBe(404);
      if (role === 'staff' || role === 'client') continue;
      const unassigned = await stack.app.inject({
        method: 'GET',
        url: `/v1/entities/${entityB}`,
        headers: member.auth,
      });
      expect(unassigned.statusCode, role).toBe(200);
    }
  });
});
