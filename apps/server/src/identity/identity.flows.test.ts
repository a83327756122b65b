import { base64url, decodeJwt, decodeProtectedHeader } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  adminPassword,
  createUnthrottledTenant,
  operatorKey,
  startTestStack,
  type TestStack,
  type TestTenant,
  uniqueName,
} from '../../test/harness.ts';
import { addMember, createEntity, signInMember } from './identity.test-support.ts';
import { totpCode } from './totp.ts';

/**
 * The built-in issuer end to end over HTTP: invitations, refresh rotation and reuse
 * detection, sign-out, TOTP enrolment, the MFA challenge and attempts to skip it, step-up
 * for sensitive operations, MFA required by regulatory tier, API keys, sign-in throttling,
 * key rotation and token tampering.
 */
let stack: TestStack;
let firm: TestTenant;
let entityA: string;
let entityB: string;

beforeAll(async () => {
  stack = await startTestStack();
  firm = await createUnthrottledTenant(stack.app, 'Flows');
  entityA = await createEntity(stack, firm, 'Flows Client A');
  entityB = await createEntity(stack, firm, 'Flows Client B');
});

afterAll(async () => {
  await stack?.close();
});

type Headers = Record<string, string>;

async function post(url: string, payload: unknown, headers: Headers = {}) {
  return await stack.app.inject({ method: 'POST', url, headers, payload: payload as Record<string, unknown> });
}

async function get(url: string, headers: Headers) {
  return await stack.app.inject({ method: 'GET', url, headers });
}

function bearer(token: string): Headers {
  return { authorization: `Bearer ${token}` };
}

/** Enrols TOTP for a signed-in member; returns the secret and the new session's tokens. */
async function enrol(auth: Headers) {
  const started = await post('/v1/me/mfa/totp', undefined, auth);
  expect(started.statusCode).toBe(200);
  const { secret, otpauthUri } = started.json<{ secret: string; otpauthUri: string }>();
  expect(otpauthUri).toMatch(/^otpauth:\/\/totp\//);
  const confirmed = await post('/v1/me/mfa/totp/confirm', { code: totpCode(secret) }, auth);
  expect(confirmed.statusCode).toBe(200);
  const body = confirmed.json<{ recoveryCodes: string[]; tokens: { access_token: string; refresh_token: string } }>();
  expect(body.recoveryCodes).toHaveLength(10);
  return { secret, recoveryCodes: body.recoveryCodes, token: body.tokens.access_token };
}

describe('invitations', () => {
  it('invites, accepts once with a good password, and signs the new user in with the invited role and entity', async () => {
    const email = `invitee-${Date.now()}@example.test`;
    const invited = await post('/v1/invitations', { email, role: 'client', entityIds: [entityA] }, firm.auth);
    expect(invited.statusCode).toBe(201);
    const { token, acceptUrl } = invited.json<{ token: string; acceptUrl: string }>();
    expect(token).toMatch(/^chi_/);
    expect(acceptUrl).toContain(token);

    const short = await post('/v1/invitations/accept', { token, password: 'short' });
    expect(short.json()).toMatchObject({ code: 'IDENTITY_PASSWORD_TOO_SHORT' });
    const breached = await post('/v1/invitations/accept', { token, password: 'password12345' });
    expect(breached.json()).toMatchObject({ code: 'IDENTITY_PASSWORD_BREACHED' });
    const accepted = await post('/v1/invitations/accept', { token, password: 'a sturdy client passphrase' });
    expect(accepted.statusCode).toBe(201);
    const again = await post('/v1/invitations/accept', { token, password: 'a sturdy client passphrase' });
    expect(again.statusCode).toBe(400);
    expect(again.json()).toMatchObject({ code: 'IDENTITY_INVITATION_INVALID' });

    const session = await signInMember(stack, firm, email, 'a sturdy client passphrase');
    const claims = decodeJwt(session.token);
    expect(claims.roles).toEqual(['client']);
    expect(claims.ent).toEqual([entityA]);
    expect((await get(`/v1/entities/${entityB}`, session.auth)).statusCode).toBe(404);
  });

  it('refuses a forged or tampered invitation token and a client invited without exactly one entity', async () => {
    const invited = await post(
      '/v1/invitations',
      { email: `x-${Date.now()}@example.test`, role: 'auditor' },
      firm.auth,
    );
    const token = invited.json<{ token: string }>().token;
    const forged = `${token.slice(0, -4)}AAAA`;
    expect(
      (await post('/v1/invitations/accept', { token: forged, password: 'a sturdy passphrase here' })).json(),
    ).toMatchObject({ code: 'IDENTITY_INVITATION_INVALID' });
    const noEntity = await post(
      '/v1/invitations',
      { email: `c-${Date.now()}@example.test`, role: 'client' },
      firm.auth,
    );
    expect(noEntity.json()).toMatchObject({ code: 'IDENTITY_ASSIGNMENT_INVALID' });
    const manager = await addMember(stack, firm, 'manager');
    const byManager = await post(
      '/v1/invitations',
      { email: `m-${Date.now()}@example.test`, role: 'staff' },
      manager.auth,
    );
    expect(byManager.json()).toMatchObject({ code: 'AUTH_FORBIDDEN' });
  });
});

describe('refresh tokens', () => {
  it('rotates, and a reused token revokes the whole session', async () => {
    const member = await addMember(stack, firm, 'partner');
    const first = member.refreshToken;
    if (!first) throw new Error('no refresh token');
    const rotated = await post('/v1/auth/refresh', { refresh_token: first });
    expect(rotated.statusCode).toBe(200);
    const second = rotated.json<{ refresh_token: string; access_token: string }>();
    expect(second.refresh_token).not.toBe(first);
    expect(decodeJwt(second.access_token).sid).toBe(decodeJwt(member.token).sid);

    const reused = await post('/v1/auth/refresh', { refresh_token: first });
    expect(reused.statusCode).toBe(401);
    expect(reused.json()).toMatchObject({ code: 'AUTH_REFRESH_REUSED' });
    // The thief's reuse also kills the legitimate holder's newer token.
    const after = await post('/v1/auth/refresh', { refresh_token: second.refresh_token });
    expect(after.json()).toMatchObject({ code: 'AUTH_REFRESH_INVALID' });
    const audit = await get('/v1/audit/events?action=auth.refresh.reused', firm.auth);
    expect(audit.json<{ items: unknown[] }>().items.length).toBeGreaterThan(0);
  });

  it('ends the session at sign-out', async () => {
    const member = await addMember(stack, firm, 'manager');
    const out = await post('/v1/auth/sign-out', {}, member.auth);
    expect(out.json()).toEqual({ revokedTokens: 1 });
    const refreshed = await post('/v1/auth/refresh', { refresh_token: member.refreshToken });
    expect(refreshed.json()).toMatchObject({ code: 'AUTH_REFRESH_INVALID' });
  });
});

describe('multi-factor authentication', () => {
  it('enrols TOTP, then sign-in needs the second factor, and the challenge is no access token', async () => {
    const member = await addMember(stack, firm, 'partner');
    const { secret, recoveryCodes } = await enrol(member.auth);
    const password = await post('/v1/auth/token', { tenantId: firm.id, email: member.email, password: adminPassword });
    const challenge = password.json<{ mfa_required: boolean; mfa_token: string }>();
    expect(challenge.mfa_required).toBe(true);
    // Skip attempts: the challenge token as a bearer, a wrong code, a replayed code.
    expect((await get('/v1/entities', bearer(challenge.mfa_token))).statusCode).toBe(401);
    expect((await post('/v1/auth/mfa', { mfa_token: challenge.mfa_token, code: '000000' })).json()).toMatchObject({
      code: 'AUTH_MFA_CODE_INVALID',
    });
    const code = totpCode(secret, Date.now() + 30_000);
    const verified = await post('/v1/auth/mfa', { mfa_token: challenge.mfa_token, code });
    expect(verified.statusCode).toBe(200);
    expect(decodeJwt(verified.json<{ access_token: string }>().access_token).amr).toEqual(['pwd', 'otp']);
    expect((await post('/v1/auth/mfa', { mfa_token: challenge.mfa_token, code })).json()).toMatchObject({
      code: 'AUTH_MFA_CODE_INVALID',
    });
    // A recovery code works once.
    const recovery = recoveryCodes[0] ?? '';
    expect((await post('/v1/auth/mfa', { mfa_token: challenge.mfa_token, code: recovery })).statusCode).toBe(200);
    expect((await post('/v1/auth/mfa', { mfa_token: challenge.mfa_token, code: recovery })).statusCode).toBe(401);
  });

  it('requires step-up for a role change from a user with MFA, and accepts it after a fresh code', async () => {
    const partner = await addMember(stack, firm, 'partner');
    const { secret, token } = await enrol(partner.auth);
    const target = await addMember(stack, firm, 'staff', [entityA]);
    const targetId = `usr_${target.userId.replaceAll('-', '')}`;
    // The enrolment session carries otp, so wind its auth_time back by signing in with a password+code later.
    const stale = await stack.platform.tokens.issue({
      userId: partner.userId,
      tenantId: String(decodeJwt(token).tenant_id)
        .slice(4)
        .replace(/(.{8})(.{4})(.{4})(.{4})(.{12})/, '$1-$2-$3-$4-$5'),
      tier: 'starter',
      roles: ['partner'],
      amr: ['pwd'],
      mfa: 'enrolled',
    });
    const refused = await stack.app.inject({
      method: 'PUT',
      url: `/v1/users/${targetId}/role`,
      headers: bearer(stale.accessToken),
      payload: { role: 'manager' },
    });
    expect(refused.statusCode).toBe(403);
    expect(refused.json()).toMatchObject({ code: 'AUTH_STEP_UP_REQUIRED' });
    const stepped = await post(
      '/v1/auth/step-up',
      { code: totpCode(secret, Date.now() + 30_000) },
      bearer(stale.accessToken),
    );
    expect(stepped.statusCode).toBe(200);
    const changed = await stack.app.inject({
      method: 'PUT',
      url: `/v1/users/${targetId}/role`,
      headers: bearer(stepped.json<{ access_token: string }>().access_token),
      payload: { role: 'manager' },
    });
    expect(changed.statusCode).toBe(200);
    expect(changed.json()).toMatchObject({ role: 'manager', entityIds: [] });
    // The demoted user's sessions ended with the change.
    expect((await post('/v1/auth/refresh', { refresh_token: target.refreshToken })).statusCode).toBe(401);
  });

  it('holds an irs-authorized firm to MFA: enrolment-only token first, nothing else reachable', async () => {
    const email = `owner@irs-${Date.now()}.test`;
    const created = await post(
      '/v1/tenants',
      {
        name: uniqueName('IRS firm'),
        tier: 'starter',
        regulatoryTier: 'irs-authorized',
        admin: { email, password: adminPassword },
      },
      bearer(operatorKey),
    );
    expect(created.statusCode).toBe(201);
    expect(created.json()).toMatchObject({ regulatoryTier: 'irs-authorized' });
    const tenantId = created.json<{ id: string }>().id;
    const signedIn = await post('/v1/auth/token', { tenantId, email, password: adminPassword });
    const body = signedIn.json<{ access_token: string; refresh_token?: string; mfa_enrolment_required: boolean }>();
    expect(body.mfa_enrolment_required).toBe(true);
    expect(body.refresh_token).toBeUndefined();
    const blocked = await get('/v1/entities', bearer(body.access_token));
    expect(blocked.statusCode).toBe(403);
    expect(blocked.json()).toMatchObject({ code: 'AUTH_MFA_ENROLMENT_REQUIRED' });
    const { token } = await enrol(bearer(body.access_token));
    expect((await get('/v1/entities', bearer(token))).statusCode).toBe(200);
    const sec = await post(
      '/v1/tenants',
      {
        name: uniqueName('SEC firm'),
        tier: 'starter',
        regulatoryTier: 'sec-registered',
        admin: { email, password: adminPassword },
      },
      bearer(operatorKey),
    );
    expect(sec.json()).toMatchObject({ code: 'TENANT_REGULATORY_TIER_NOT_ALLOWED' });
  });

  it('needs step-up to export the audit log for a user with MFA', async () => {
    const owner = await addMember(stack, firm, 'owner');
    const { token } = await enrol(owner.auth);
    expect((await get('/v1/audit/events?format=csv', bearer(token))).statusCode).toBe(200);
    const stale = decodeJwt(token);
    const old = await stack.platform.tokens.issue({
      userId: owner.userId,
      tenantId: String(stale.tenant_id)
        .slice(4)
        .replace(/(.{8})(.{4})(.{4})(.{4})(.{12})/, '$1-$2-$3-$4-$5'),
      tier: 'starter',
      roles: ['owner'],
      amr: ['pwd', 'otp'],
      authTime: Math.floor(Date.now() / 1000) - 3600,
      mfa: 'enrolled',
    });
    const refused = await get('/v1/audit/events?format=csv', bearer(old.accessToken));
    expect(refused.json()).toMatchObject({ code: 'AUTH_STEP_UP_REQUIRED' });
    expect((await get('/v1/audit/events', bearer(old.accessToken))).statusCode).toBe(200);
  });
});

describe('API keys', () => {
  it('is shown once, read scope cannot write, entity list narrows, revocation and expiry stop it', async () => {
    const created = await post('/v1/api-keys', { name: 'Reader', scope: 'read', entityIds: [entityA] }, firm.auth);
    expect(created.statusCode).toBe(201);
    const key = created.json<{ key: string; prefix: string; id: string }>();
    expect(key.key.startsWith(`${key.prefix}_`)).toBe(true);
    const listed = await get('/v1/api-keys', firm.auth);
    expect(JSON.stringify(listed.json())).not.toContain(key.key);
    const auth = bearer(key.key);
    const own = await get(`/v1/entities/${entityA}`, auth);
    expect(own.statusCode).toBe(200);
    expect(own.headers['ratelimit-limit']).toBeDefined();
    expect((await get(`/v1/entities/${entityB}`, auth)).statusCode).toBe(404);
    const write = await stack.app.inject({
      method: 'PATCH',
      url: `/v1/entities/${entityA}`,
      headers: auth,
      payload: { name: 'Renamed by a reader' },
    });
    expect(write.json()).toMatchObject({ code: 'AUTH_FORBIDDEN' });
    expect((await post('/v1/api-keys', { name: 'Escalate', scope: 'write' }, auth)).json()).toMatchObject({
      code: 'AUTH_FORBIDDEN',
    });
    expect((await post(`/v1/api-keys/${key.id}/revoke`, undefined, firm.auth)).statusCode).toBe(200);
    expect((await get(`/v1/entities/${entityA}`, auth)).json()).toMatchObject({ code: 'AUTH_TOKEN_INVALID' });
    const tampered = `${key.key.slice(0, -3)}xyz`;
    expect((await get(`/v1/entities/${entityA}`, bearer(tampered))).statusCode).toBe(401);
  });

  it('lets a write key write and refuses an expiry in the past', async () => {
    const created = await post('/v1/api-keys', { name: 'Writer', scope: 'write' }, firm.auth);
    const auth = bearer(created.json<{ key: string }>().key);
    const renamed = await stack.app.inject({
      method: 'PATCH',
      url: `/v1/entities/${entityB}`,
      headers: auth,
      payload: { name: 'Flows Client B (renamed)' },
    });
    expect(renamed.statusCode).toBe(200);
    const past = await post(
      '/v1/api-keys',
      { name: 'Old', scope: 'read', expiresAt: '2020-01-01T00:00:00Z' },
      firm.auth,
    );
    expect(past.json()).toMatchObject({ code: 'IDENTITY_API_KEY_INVALID' });
  });
});

describe('sign-in throttling', () => {
  it('locks an account after five failures, even for the right password, and audits it', async () => {
    const member = await addMember(stack, firm, 'auditor');
    for (let attempt = 0; attempt < 5; attempt++) {
      const failed = await post('/v1/auth/token', {
        tenantId: firm.id,
        email: member.email,
        password: 'wrong password!',
      });
      expect(failed.json()).toMatchObject({ code: 'AUTH_LOGIN_FAILED' });
    }
    const locked = await post('/v1/auth/token', { tenantId: firm.id, email: member.email, password: adminPassword });
    expect(locked.statusCode).toBe(429);
    expect(locked.json()).toMatchObject({ code: 'AUTH_SIGN_IN_THROTTLED' });
    expect(Number(locked.headers['retry-after'])).toBeGreaterThan(0);
    const audit = await get('/v1/audit/events?action=auth.account.locked', firm.auth);
    expect(audit.json<{ items: unknown[] }>().items).toHaveLength(1);
  });

  it('treats an unknown email the same way, so lockouts reveal nothing', async () => {
    const email = `nobody-${Date.now()}@example.test`;
    for (let attempt = 0; attempt < 5; attempt++) {
      expect((await post('/v1/auth/token', { tenantId: firm.id, email, password: 'wrong password!' })).statusCode).toBe(
        401,
      );
    }
    expect((await post('/v1/auth/token', { tenantId: firm.id, email, password: 'wrong password!' })).statusCode).toBe(
      429,
    );
  });
});

describe('signing keys and tampering', () => {
  it('rotates: new tokens use the new key, old tokens still verify, the JWKS carries both', async () => {
    const before = firm.token;
    const rotated = await post('/v1/admin/signing-keys/rotate', undefined, bearer(operatorKey));
    expect(rotated.statusCode).toBe(200);
    const { kid, published } = rotated.json<{ kid: string; published: string[] }>();
    expect(published).toContain(kid);
    expect(published).toContain(decodeProtectedHeader(before).kid);
    expect((await get('/v1/entities', bearer(before))).statusCode).toBe(200);
    const fresh = await signInMember(stack, firm, firm.email);
    expect(decodeProtectedHeader(fresh.token).kid).toBe(kid);
    expect((await get('/v1/entities', fresh.auth)).statusCode).toBe(200);
  });

  it('refuses a token whose role or entity claims were edited', async () => {
    const staff = await addMember(stack, firm, 'staff', [entityA]);
    const [header, payload, signature] = staff.token.split('.');
    const claims = JSON.parse(Buffer.from(payload ?? '', 'base64url').toString());
    for (const edit of [{ roles: ['owner'] }, { ent: undefined }, { mfa: 'none', amr: ['pwd', 'otp'] }]) {
      const forged = `${header}.${base64url.encode(JSON.stringify({ ...claims, ...edit }))}.${signature}`;
      expect((await get('/v1/entities', bearer(forged))).json()).toMatchObject({ code: 'AUTH_TOKEN_INVALID' });
    }
  });
});

describe('across firms', () => {
  it("cannot reach another firm's users, keys, invitations or sessions", async () => {
    // Proves cross-tenant isolation of the identity routes: ids of firm B used with firm A's
    // credentials answer not found, and tokens whose tenant part is swapped are refused.
    const other = await createUnthrottledTenant(stack.app, 'Flows Other');
    const theirStaff = await addMember(stack, other, 'staff');
    const theirUserId = `usr_${theirStaff.userId.replaceAll('-', '')}`;
    const theirKey = (await post('/v1/api-keys', { name: 'Theirs', scope: 'read' }, other.auth)).json<{
      id: string;
      key: string;
    }>();
    const roleChange = await stack.app.inject({
      method: 'PUT',
      url: `/v1/users/${theirUserId}/role`,
      headers: firm.auth,
      payload: { role: 'auditor' },
    });
    expect(roleChange.json()).toMatchObject({ code: 'IDENTITY_USER_NOT_FOUND' });
    const assign = await stack.app.inject({
      method: 'PUT',
      url: `/v1/users/${theirUserId}/entities`,
      headers: firm.auth,
      payload: { entityIds: [entityA] },
    });
    expect(assign.json()).toMatchObject({ code: 'IDENTITY_USER_NOT_FOUND' });
    expect((await post(`/v1/api-keys/${theirKey.id}/revoke`, undefined, firm.auth)).json()).toMatchObject({
      code: 'IDENTITY_API_KEY_NOT_FOUND',
    });
    const listed = await get('/v1/users', firm.auth);
    expect(JSON.stringify(listed.json())).not.toContain(theirUserId);

    // A staff user of firm B cannot be assigned an entity of firm A, even by firm B's owner.
    const foreignEntity = await stack.app.inject({
      method: 'PUT',
      url: `/v1/users/${theirUserId}/entities`,
      headers: other.auth,
      payload: { entityIds: [entityA] },
    });
    expect(foreignEntity.json()).toMatchObject({ code: 'IDENTITY_ASSIGNMENT_INVALID' });

    // Swap the tenant part of their refresh token and API key for ours: refused.
    const firmHex = firm.id.slice(4);
    const swap = (token: string) => `${token.slice(0, 4)}${firmHex}${token.slice(36)}`;
    expect((await post('/v1/auth/refresh', { refresh_token: swap(theirStaff.refreshToken ?? '') })).statusCode).toBe(
      401,
    );
    expect((await get('/v1/entities', bearer(swap(theirKey.key)))).statusCode).toBe(401);
  });

  it('assigns entities to staff, which takes effect at the next sign-in', async () => {
    const staff = await addMember(stack, firm, 'staff', [entityA]);
    const staffId = `usr_${staff.userId.replaceAll('-', '')}`;
    const assigned = await stack.app.inject({
      method: 'PUT',
      url: `/v1/users/${staffId}/entities`,
      headers: firm.auth,
      payload: { entityIds: [entityB] },
    });
    expect(assigned.statusCode).toBe(200);
    expect(assigned.json()).toMatchObject({ entityIds: [entityB] });
    const again = await signInMember(stack, firm, staff.email);
    expect((await get(`/v1/entities/${entityB}`, again.auth)).statusCode).toBe(200);
    expect((await get(`/v1/entities/${entityA}`, again.auth)).statusCode).toBe(404);
    // The change ended the old session.
    expect((await post('/v1/auth/refresh', { refresh_token: staff.refreshToken })).statusCode).toBe(401);
  });
});
