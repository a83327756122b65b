import type { webcrypto } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';

type CryptoKey = webcrypto.CryptoKey;

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUnthrottledTenant, startTestStack, type TestStack, type TestTenant } from '../../test/harness.ts';
import { createEntity } from './identity.test-support.ts';
import { parseOidcIssuers } from './oidc.ts';

/**
 * External OIDC with Cognito-shaped tokens from a locally generated key pair: ID tokens
 * (`aud`, `token_use: id`) and access tokens (`client_id`, `token_use: access`, no `aud`)
 * map to the same caller as built-in tokens; tenant, tier and role come only from the
 * configured claims and must agree with the registry; forged, foreign-audience and
 * other-firm tokens are refused; a per-tenant issuer cannot name another firm.
 */
const issuer = 'https://cognito-idp.us-east-1.amazonaws.com/us-east-1_TestPool';
const clientId = 'countinghouse-web';
let stack: TestStack;
let perTenantStack: TestStack;
let firm: TestTenant;
let otherFirm: TestTenant;
let entityA: string;
let entityB: string;
let privateKey: CryptoKey;
let strangerKey: CryptoKey;

function issuerConfig(jwk: object, extra: Record<string, unknown> = {}) {
  return {
    issuer,
    jwks: { keys: [jwk] },
    audience: [clientId],
    tokenUse: ['id', 'access'],
    claims: {
      tenant: 'custom:tenantId',
      tier: 'custom:tier',
      regulatoryTier: 'custom:regulatoryTier',
      groups: 'cognito:groups',
      entities: 'custom:entityIds',
    },
    roleMap: { 'firm-partners': 'partner', 'firm-staff': 'staff', 'firm-auditors': 'auditor' },
    ...extra,
  };
}

beforeAll(async () => {
  const pair = await generateKeyPair('RS256', { extractable: true });
  privateKey = pair.privateKey as CryptoKey;
  strangerKey = (await generateKeyPair('RS256')).privateKey as CryptoKey;
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'test-key', alg: 'RS256', use: 'sig' };
  stack = await startTestStack({ config: { oidcIssuers: JSON.stringify([issuerConfig(jwk)]) } });
  firm = await createUnthrottledTenant(stack.app, 'OIDC');
  otherFirm = await createUnthrottledTenant(stack.app, 'OIDC Other');
  entityA = await createEntity(stack, firm, 'OIDC Client A');
  entityB = await createEntity(stack, firm, 'OIDC Client B');
  perTenantStack = await startTestStack({
    config: { oidcIssuers: JSON.stringify([issuerConfig(jwk, { tenantId: firm.id })]) },
  });
});

afterAll(async () => {
  await perTenantStack?.close();
  await stack?.close();
});

interface Shape {
  use?: 'id' | 'access';
  tenant?: string;
  groups?: string[];
  tier?: string;
  entities?: string;
  key?: CryptoKey;
  audience?: string;
  sub?: string;
}

/** A Cognito-shaped token: ID tokens carry aud, access tokens client_id and no aud. */
async function cognitoToken(shape: Shape): Promise<string> {
  const use = shape.use ?? 'id';
  const claims: Record<string, unknown> = {
    token_use: use,
    'cognito:groups': shape.groups ?? ['firm-partners'],
    'custom:tenantId': shape.tenant ?? firm.id,
    'custom:tier': shape.tier ?? 'starter',
    auth_time: Math.floor(Date.now() / 1000),
  };
  if (shape.entities !== undefined) claims['custom:entityIds'] = shape.entities;
  if (use === 'access') claims.client_id = shape.audience ?? clientId;
  const jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: 'RS256', kid: 'test-key' })
    .setIssuer(issuer)
    .setSubject(shape.sub ?? 'cognito-user-1')
    .setIssuedAt()
    .setExpirationTime('10m');
  if (use === 'id') jwt.setAudience(shape.audience ?? clientId);
  return await jwt.sign(shape.key ?? privateKey);
}

async function me(token: string, target = stack) {
  return await target.app.inject({ method: 'GET', url: '/v1/me', headers: { authorization: `Bearer ${token}` } });
}

describe('Cognito tokens', () => {
  it('maps ID and access tokens to the firm, role and credential', async () => {
    for (const use of ['id', 'access'] as const) {
      const response = await me(await cognitoToken({ use }));
      expect(response.statusCode, use).toBe(200);
      expect(response.json()).toMatchObject({
        tenantId: firm.id,
        role: 'partner',
        credential: 'oidc',
        entityIds: null,
      });
    }
    const created = await stack.app.inject({
      method: 'POST',
      url: '/v1/entities',
      headers: { authorization: `Bearer ${await cognitoToken({ use: 'access' })}` },
      payload: { name: 'Created through Cognito LLC' },
    });
    expect(created.statusCode).toBe(201);
  });

  it('scopes a staff group to the entities in its server-set attribute', async () => {
    const token = await cognitoToken({ groups: ['firm-staff'], entities: entityA, sub: 'cognito-staff' });
    const headers = { authorization: `Bearer ${token}` };
    expect((await stack.app.inject({ method: 'GET', url: `/v1/entities/${entityA}`, headers })).statusCode).toBe(200);
    expect((await stack.app.inject({ method: 'GET', url: `/v1/entities/${entityB}`, headers })).statusCode).toBe(404);
    const auditor = await cognitoToken({ groups: ['firm-auditors'], sub: 'cognito-auditor' });
    const write = await stack.app.inject({
      method: 'PATCH',
      url: `/v1/entities/${entityA}`,
      headers: { authorization: `Bearer ${auditor}` },
      payload: { name: 'Auditor rename' },
    });
    expect(write.json()).toMatchObject({ code: 'AUTH_FORBIDDEN' });
  });

  it('refuses forged, foreign-audience, mismatched-tier, role-less and unknown-firm tokens', async () => {
    const refused = [
      await cognitoToken({ key: strangerKey }),
      await cognitoToken({ audience: 'another-client' }),
      await cognitoToken({ use: 'access', audience: 'another-client' }),
      await cognitoToken({ tier: 'enterprise' }),
      await cognitoToken({ groups: ['everyone'] }),
      await cognitoToken({ tenant: 'ten_0000000000007000800000000000dead' }),
    ];
    for (const token of refused) {
      const response = await me(token);
      expect(response.statusCode).toBe(401);
      expect(response.json()).toMatchObject({ code: 'AUTH_TOKEN_INVALID' });
    }
  });

  it('keeps a per-tenant issuer to its own firm', async () => {
    expect((await me(await cognitoToken({}), perTenantStack)).statusCode).toBe(200);
    const foreign = await me(await cognitoToken({ tenant: otherFirm.id }), perTenantStack);
    expect(foreign.json()).toMatchObject({ code: 'AUTH_TOKEN_INVALID' });
  });

  it('validates the configuration', () => {
    expect(() => parseOidcIssuers('[{"issuer":"x","audience":["a"],"claims":{}}]')).toThrow();
    expect(parseOidcIssuers(undefined)).toEqual([]);
  });
});
