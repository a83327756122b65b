import type { webcrypto } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUnthrottledTenant, startTestStack, type TestStack, type TestTenant } from '../../test/harness.ts';

/**
 * An OIDC issuer whose keys are fetched, not configured inline: a local HTTP server plays the
 * issuer, publishing its discovery document and JWKS. One stack finds the keys by discovery,
 * another by a JWKS URL; both accept the issuer's tokens and refuse a token signed by a key
 * the issuer does not publish.
 */
let issuerServer: http.Server;
let issuerUrl: string;
type CryptoKey = webcrypto.CryptoKey;

let jwk: JWK;
let signingKey: CryptoKey;
let strangerKey: CryptoKey;
const fetched: string[] = [];
const clientId = 'countinghouse-remote';
let byDiscovery: TestStack;
let byJwksUrl: TestStack;
let firmOfDiscovery: TestTenant;
let firmOfJwksUrl: TestTenant;

function issuerConfig(keys: { discovery: true } | { jwksUri: string }) {
  return JSON.stringify([
    {
      issuer: issuerUrl,
      ...keys,
      audience: [clientId],
      tokenUse: ['id'],
      claims: { tenant: 'custom:tenantId', tier: 'custom:tier', groups: 'cognito:groups' },
      roleMap: { 'firm-partners': 'partner' },
    },
  ]);
}

async function token(tenantId: string, key: CryptoKey = signingKey): Promise<string> {
  return await new SignJWT({
    token_use: 'id',
    'cognito:groups': ['firm-partners'],
    'custom:tenantId': tenantId,
    'custom:tier': 'starter',
    auth_time: Math.floor(Date.now() / 1000),
  })
    .setProtectedHeader({ alg: 'RS256', kid: 'remote-key' })
    .setIssuer(issuerUrl)
    .setSubject('remote-user-1')
    .setAudience(clientId)
    .setIssuedAt()
    .setExpirationTime('10m')
    .sign(key);
}

beforeAll(async () => {
  const pair = await generateKeyPair('RS256', { extractable: true });
  signingKey = pair.privateKey as CryptoKey;
  strangerKey = (await generateKeyPair('RS256')).privateKey as CryptoKey;
  jwk = { ...(await exportJWK(pair.publicKey)), kid: 'remote-key', alg: 'RS256', use: 'sig' };
  issuerServer = http.createServer((request, response) => {
    fetched.push(request.url ?? '');
    response.setHeader('content-type', 'application/json');
    if (request.url === '/.well-known/openid-configuration') {
      response.end(JSON.stringify({ issuer: issuerUrl, jwks_uri: `${issuerUrl}/keys.json` }));
    } else if (request.url === '/keys.json') {
      response.end(JSON.stringify({ keys: [jwk] }));
    } else {
      response.statusCode = 404;
      response.end('{}');
    }
  });
  await new Promise<void>((resolve) => issuerServer.listen(0, '127.0.0.1', resolve));
  issuerUrl = `http://127.0.0.1:${(issuerServer.address() as AddressInfo).port}`;
  byDiscovery = await startTestStack({ config: { oidcIssuers: issuerConfig({ discovery: true }) } });
  byJwksUrl = await startTestStack({ config: { oidcIssuers: issuerConfig({ jwksUri: `${issuerUrl}/keys.json` }) } });
  firmOfDiscovery = await createUnthrottledTenant(byDiscovery.app, 'OIDC Discovery');
  firmOfJwksUrl = await createUnthrottledTenant(byJwksUrl.app, 'OIDC JWKS URL');
});

afterAll(async () => {
  await byDiscovery?.close();
  await byJwksUrl?.close();
  await new Promise((resolve) => issuerServer?.close(resolve));
});

async function me(stack: TestStack, bearer: string) {
  return await stack.app.inject({ method: 'GET', url: '/v1/me', headers: { authorization: `Bearer ${bearer}` } });
}

describe('remote issuer keys', () => {
  it('finds the keys through the discovery document and accepts the issuer’s token', async () => {
    const response = await me(byDiscovery, await token(firmOfDiscovery.id));
    expect(response.statusCode, response.body).toBe(200);
    expect(response.json()).toMatchObject({ tenantId: firmOfDiscovery.id, role: 'partner', credential: 'oidc' });
    expect(fetched).toContain('/.well-known/openid-configuration');
    expect(fetched).toContain('/keys.json');
  });

  it('fetches the keys from a configured JWKS URL', async () => {
    const response = await me(byJwksUrl, await token(firmOfJwksUrl.id));
    expect(response.statusCode, response.body).toBe(200);
    expect(response.json()).toMatchObject({ tenantId: firmOfJwksUrl.id, credential: 'oidc' });
  });

  it('refuses a token signed by a key the issuer does not publish', async () => {
    for (const [stack, firm] of [
      [byDiscovery, firmOfDiscovery],
      [byJwksUrl, firmOfJwksUrl],
    ] as const) {
      const response = await me(stack, await token(firm.id, strangerKey));
      expect(response.statusCode).toBe(401);
      expect(response.json()).toMatchObject({ code: 'AUTH_TOKEN_INVALID' });
    }
  });
});
