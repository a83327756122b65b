import { base64url, decodeJwt, decodeProtectedHeader, generateKeyPair, type JWK, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  adminPassword,
  createTenant,
  operatorKey,
  problemOf,
  startTestStack,
  type TestStack,
  type TestTenant,
  uniqueName,
} from '../../test/harness.ts';
import { formatId, newUuid, parseId } from '../platform/ids.ts';
import { tenantContextOf } from '../tenancy/tenancy.service.ts';

/**
 * Sign-in with the built-in issuer and the token checks on tenant routes: the happy path,
 * failures that all look alike, forged or expired tokens, and suspended tenants.
 */
let stack: TestStack;
let firmA: TestTenant;
let firmB: TestTenant;

beforeAll(async () => {
  stack = await startTestStack();
  firmA = await createTenant(stack.app, 'Auth A');
  firmB = await createTenant(stack.app, 'Auth B');
});

afterAll(async () => {
  await stack?.close();
});

async function signIn(payload: Record<string, unknown>) {
  return await stack.app.inject({ method: 'POST', url: '/v1/auth/token', payload });
}

async function listEntities(headers: Record<string, string>) {
  return await stack.app.inject({ method: 'GET', url: '/v1/entities', headers });
}

function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}

function encodeSegment(value: object): string {
  return base64url.encode(JSON.stringify(value));
}

/** Onboards a firm through the operator API without signing in (so no registry lookup is cached). */
async function onboard(prefix: string, email: string): Promise<string> {
  const created = await stack.app.inject({
    method: 'POST',
    url: '/v1/tenants',
    headers: bearer(operatorKey),
    payload: { name: uniqueName(prefix), tier: 'starter', admin: { email, password: adminPassword } },
  });
  expect(created.statusCode).toBe(201);
  return created.json<{ id: string }>().id;
}

function tenantUuid(publicId: string): string {
  const uuid = parseId('tenant', publicId);
  if (uuid === null) throw new Error(`not a tenant id: ${publicId}`);
  return uuid;
}

async function suspend(publicId: string): Promise<void> {
  const result = await stack.platform.ownerPool.query("update tenants set status = 'suspended' where id = $1", [
    tenantUuid(publicId),
  ]);
  expect(result.rowCount).toBe(1);
}

async function adminUserId(publicId: string): Promise<string> {
  const record = await stack.platform.tenancy.getTenant(tenantUuid(publicId));
  if (!record) throw new Error(`tenant ${publicId} is not in the registry`);
  const { rows } = await stack.platform.scopes.run(tenantContextOf(record), (db) =>
    db.query<{ id: string }>('select id from users'),
  );
  const row = rows[0];
  if (rows.length !== 1 || !row) throw new Error(`expected one user in ${publicId}, found ${rows.length}`);
  return row.id;
}

describe('sign-in', () => {
  it('issues a short-lived ES256 access token whose key is published and whose claims name the firm', async () => {
    const response = await signIn({ tenantId: firmA.id, email: firmA.email, password: adminPassword });
    expect(response.statusCode).toBe(200);
    expect(response.headers['cache-control']).toBe('no-store');
    const body = response.json<{ access_token: string; token_type: string; expires_in: number }>();
    expect(body).toEqual({
      access_token: expect.any(String),
      token_type: 'Bearer',
      expires_in: 900,
      refresh_token: expect.stringMatching(/^chr_[0-9a-f]{64}_[A-Za-z0-9_-]{43}$/),
    });

    const header = decodeProtectedHeader(body.access_token);
    expect(header.alg).toBe('ES256');
    expect(header.typ).toBe('at+jwt');
    const jwks = await stack.app.inject({ method: 'GET', url: '/.well-known/jwks.json' });
    expect(jwks.statusCode).toBe(200);
    const keys = jwks.json<{ keys: JWK[] }>().keys;
    expect(keys.map((key) => key.kid)).toContain(header.kid);
    // Only public halves are published.
    for (const key of keys) expect(key.d).toBeUndefined();

    const claims = decodeJwt(body.access_token);
    expect(claims.tenant_id).toBe(firmA.id);
    expect(claims.tenant_id).toMatch(/^ten_[0-9a-f]{32}$/);
    expect(claims.tier).toBe('starter');
    expect(claims.roles).toEqual(['owner']);
    expect(claims.amr).toEqual(['pwd']);
    expect(claims.mfa).toBe('none');
    expect(claims.ent).toBeUndefined();
    expect(claims.sub).toMatch(/^usr_[0-9a-f]{32}$/);
    expect(claims.iss).toBe('urn:countinghouse:issuer');
    expect(claims.aud).toBe('urn:countinghouse:api');
    expect(typeof claims.exp).toBe('number');
    expect(typeof claims.iat).toBe('number');
    expect(Number(claims.exp) - Number(claims.iat)).toBe(900);

    // The token is accepted where it is meant to be used.
    expect((await listEntities(bearer(body.access_token))).statusCode).toBe(200);
  });

  it('matches the email case-insensitively, both at onboarding and at sign-in', async () => {
    const tenantId = await onboard('Auth Case', 'Owner.Mixed@Example.Test');
    for (const email of ['owner.mixed@example.test', 'OWNER.MIXED@EXAMPLE.TEST', 'Owner.Mixed@Example.Test']) {
      const response = await signIn({ tenantId, email, password: adminPassword });
      expect(response.statusCode, email).toBe(200);
    }
  });
});

describe('sign-in failures are indistinguishable', () => {
  const cases: Array<{ title: string; payload: () => Record<string, unknown> }> = [
    {
      title: 'a wrong password',
      payload: () => ({ tenantId: firmA.id, email: firmA.email, password: `${adminPassword}!` }),
    },
    {
      title: 'an unknown email',
      payload: () => ({ tenantId: firmA.id, email: 'nobody@nowhere.test', password: adminPassword }),
    },
    {
      title: 'a malformed tenant id',
      payload: () => ({ tenantId: 'ten_not-a-real-id', email: firmA.email, password: adminPassword }),
    },
    {
      title: 'an unknown, well-formed tenant id',
      payload: () => ({ tenantId: formatId('tenant', newUuid()), email: firmA.email, password: adminPassword }),
    },
    {
      title: "firm B's admin credentials against firm A's tenant id",
      payload: () => ({ tenantId: firmA.id, email: firmB.email, password: adminPassword }),
    },
  ];

  for (const testCase of cases) {
    it(`answers 401 AUTH_LOGIN_FAILED for ${testCase.title}`, async () => {
      const response = await signIn(testCase.payload());
      const problem = problemOf(response);
      expect(problem.status).toBe(401);
      expect(problem.contentType).toMatch(/^application\/problem\+json/);
      expect(problem.body).toMatchObject({ code: 'AUTH_LOGIN_FAILED', status: 401 });
      // No detail that would tell which part was wrong, and no token.
      expect(problem.body).not.toHaveProperty('detail');
      expect(problem.body).not.toHaveProperty('access_token');
    });
  }

  it("still signs firm B's admin in to firm B (the cross-tenant refusal is about the tenant)", async () => {
    const response = await signIn({ tenantId: firmB.id, email: firmB.email, password: adminPassword });
    expect(response.statusCode).toBe(200);
    expect(decodeJwt(response.json<{ access_token: string }>().access_token).tenant_id).toBe(firmB.id);
  });

  it('answers 400 REQUEST_VALIDATION_FAILED for a missing or an unknown field', async () => {
    const missing = await signIn({ tenantId: firmA.id, email: firmA.email });
    expect(missing.statusCode).toBe(400);
    expect(missing.json()).toMatchObject({ code: 'REQUEST_VALIDATION_FAILED' });

    const unknown = await signIn({ tenantId: firmA.id, email: firmA.email, password: adminPassword, role: 'admin' });
    expect(unknown.statusCode).toBe(400);
    expect(unknown.json()).toMatchObject({ code: 'REQUEST_VALIDATION_FAILED' });
  });
});

describe('token attacks on a tenant route', () => {
  function splitToken(token: string): [string, string, string] {
    const [header, payload, signature] = token.split('.');
    if (header === undefined || payload === undefined || signature === undefined) throw new Error('not a JWS');
    return [header, payload, signature];
  }

  async function expectInvalid(token: string) {
    const response = await listEntities(bearer(token));
    const problem = problemOf(response);
    expect(problem.status).toBe(401);
    expect(problem.contentType).toMatch(/^application\/problem\+json/);
    expect(problem.body).toMatchObject({ code: 'AUTH_TOKEN_INVALID', status: 401 });
    return problem.body;
  }

  it('accepts the untouched token (the control for every attack below)', async () => {
    expect((await listEntities(firmA.auth)).statusCode).toBe(200);
  });

  it("refuses a token whose tenant_id was swapped to firm B's, keeping A's signature", async () => {
    const [header, payload, signature] = splitToken(firmA.token);
    const claims = decodeJwt(firmA.token);
    const tampered = encodeSegment({ ...claims, tenant_id: firmB.id });
    expect(tampered).not.toBe(payload);
    await expectInvalid(`${header}.${tampered}.${signature}`);
  });

  it('refuses a token signed by another ES256 key under the real kid', async () => {
    const { privateKey } = await generateKeyPair('ES256');
    const { kid } = decodeProtectedHeader(firmA.token);
    expect(kid).toBeTruthy();
    const forged = await new SignJWT(decodeJwt(firmA.token))
      .setProtectedHeader({ alg: 'ES256', kid, typ: 'at+jwt' })
      .sign(privateKey);
    await expectInvalid(forged);
  });

  it('refuses an unsigned alg:none token', async () => {
    const [, payload] = splitToken(firmA.token);
    await expectInvalid(`${encodeSegment({ alg: 'none', typ: 'at+jwt' })}.${payload}.`);
  });

  it("refuses an HS256 token keyed with the public key's x (algorithm confusion)", async () => {
    const { kid } = decodeProtectedHeader(firmA.token);
    const publicJwk = stack.platform.tokens.jwks.keys.find((key) => key.kid === kid);
    expect(publicJwk?.x).toBeTruthy();
    const forged = await new SignJWT(decodeJwt(firmA.token))
      .setProtectedHeader({ alg: 'HS256', kid, typ: 'at+jwt' })
      .sign(new TextEncoder().encode(publicJwk?.x ?? ''));
    await expectInvalid(forged);
  });

  it('refuses a genuine token that expired', async () => {
    const claims = decodeJwt(firmA.token);
    const userId = parseId('user', String(claims.sub));
    expect(userId).not.toBeNull();
    vi.useFakeTimers({ toFake: ['Date'] });
    let expired: string;
    try {
      vi.setSystemTime(Date.now() - 3600_000);
      ({ accessToken: expired } = await stack.platform.tokens.issue({
        userId: userId ?? '',
        tenantId: tenantUuid(firmA.id),
        tier: 'starter',
        roles: ['owner'],
      }));
    } finally {
      vi.useRealTimers();
    }
    const expiresAt = Number(decodeJwt(expired).exp);
    expect(expiresAt * 1000).toBeLessThan(Date.now() - 2_000_000);
    const body = await expectInvalid(expired);
    expect(body).toMatchObject({ detail: 'The token has expired.' });
  });

  it('refuses a garbage string', async () => {
    await expectInvalid('this-is-not-a-jwt');
    await expectInvalid('a.b.c');
  });

  it('answers AUTH_CREDENTIALS_MISSING without an Authorization header or with a non-bearer scheme', async () => {
    const basic = `Basic ${Buffer.from(`${firmA.email}:${adminPassword}`).toString('base64')}`;
    const attempts: Array<Record<string, string>> = [{}, { authorization: basic }];
    for (const headers of attempts) {
      const problem = problemOf(await listEntities(headers));
      expect(problem.status).toBe(401);
      expect(problem.contentType).toMatch(/^application\/problem\+json/);
      expect(problem.body).toMatchObject({ code: 'AUTH_CREDENTIALS_MISSING' });
    }
  });
});

describe('a suspended tenant', () => {
  it("refuses the tenant's token with 403 TENANT_SUSPENDED and its sign-in with 401", async () => {
    const email = 'owner@suspended.test';
    const tenantId = await onboard('Auth Suspended', email);
    const userId = await adminUserId(tenantId);
    // Suspended before any authenticated request, so no registry lookup is cached yet.
    await suspend(tenantId);
    const { accessToken } = await stack.platform.tokens.issue({
      userId,
      tenantId: tenantUuid(tenantId),
      tier: 'starter',
      roles: ['owner'],
    });

    const problem = problemOf(await listEntities(bearer(accessToken)));
    expect(problem.status).toBe(403);
    expect(problem.contentType).toMatch(/^application\/problem\+json/);
    expect(problem.body).toMatchObject({ code: 'TENANT_SUSPENDED' });

    const signedIn = await signIn({ tenantId, email, password: adminPassword });
    expect(signedIn.statusCode).toBe(401);
    expect(signedIn.json()).toMatchObject({ code: 'AUTH_LOGIN_FAILED' });
  });

  it('takes effect on an already signed-in tenant once the registry cache lapses', async () => {
    const firm = await createTenant(stack.app, 'Auth Later Suspended');
    expect((await listEntities(firm.auth)).statusCode).toBe(200);
    await suspend(firm.id);
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(Date.now() + 6_000);
      const problem = problemOf(await listEntities(firm.auth));
      expect(problem.status).toBe(403);
      expect(problem.body).toMatchObject({ code: 'TENANT_SUSPENDED' });
    } finally {
      vi.useRealTimers();
    }
  });
});
