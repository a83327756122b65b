import type { webcrypto } from 'node:crypto';
import { exportJWK, generateKeyPair } from 'jose';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { AppError } from '../platform/errors.ts';
import { newUuid } from '../platform/ids.ts';
import { Credentials } from './credentials.ts';
import { identityLimits } from './identity.limits.ts';
import { type SigningKey, signingAlgorithm } from './signing-keys.ts';
import { type AccessClaims, TokenService } from './tokens.ts';
import { VerifiedTokenCache } from './verified-token-cache.ts';

/**
 * The verified-token cache: a token verified once is answered from memory until its own
 * `exp` (never longer), and a change of the key ring — a rotation that retires a key, or a
 * reload — makes every token be verified afresh, so a retired key's tokens are refused at
 * once. Tokens are keyed by their exact string, so two firms' tokens never share an entry.
 * The key ring and clock are local (generated ES256 keys, fake Date); no database.
 */
async function signingKey(): Promise<SigningKey> {
  const { publicKey, privateKey } = await generateKeyPair(signingAlgorithm, { extractable: true });
  const kid = newUuid();
  return {
    kid,
    privateKey: privateKey as webcrypto.CryptoKey,
    publicJwk: { ...(await exportJWK(publicKey)), kid, alg: signingAlgorithm, use: 'sig' },
  };
}

function claimsFor(tenantId: string): AccessClaims {
  return { userId: newUuid(), tenantId, tier: 'starter', roles: ['owner'] };
}

async function refusal(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => null,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(AppError);
  return (error as AppError).code;
}

let keyA: SigningKey;
let keyB: SigningKey;

beforeAll(async () => {
  keyA = await signingKey();
  keyB = await signingKey();
});

afterEach(() => {
  vi.useRealTimers();
});

describe('VerifiedTokenCache', () => {
  it('answers until the expiry instant and not at it', () => {
    const cache = new VerifiedTokenCache<string>(10);
    cache.remember('t', 'claims', 2_000, cache.generation, 1_000);
    expect(cache.find('t', 1_999)).toBe('claims');
    expect(cache.find('t', 2_000)).toBeNull();
    // The expired entry is gone for good, even if the clock steps back.
    expect(cache.find('t', 1_500)).toBeNull();
  });

  it('does not remember an expired token, a verification older than the last clear, or anything when sized 0', () => {
    const cache = new VerifiedTokenCache<string>(10);
    cache.remember('expired', 'claims', 1_000, cache.generation, 1_000);
    const before = cache.generation;
    cache.clear();
    cache.remember('stale', 'claims', 5_000, before, 1_000);
    expect(cache.find('expired', 999)).toBeNull();
    expect(cache.find('stale', 1_000)).toBeNull();
    const off = new VerifiedTokenCache<string>(0);
    off.remember('t', 'claims', 5_000, off.generation, 1_000);
    expect(off.find('t', 1_000)).toBeNull();
  });

  it('evicts the least recently used entry at its bound', () => {
    const cache = new VerifiedTokenCache<string>(2);
    cache.remember('a', 'A', 9_000, cache.generation, 0);
    cache.remember('b', 'B', 9_000, cache.generation, 0);
    expect(cache.find('a', 1)).toBe('A'); // a is now the most recent
    cache.remember('c', 'C', 9_000, cache.generation, 0);
    expect(cache.size).toBe(2);
    expect(cache.find('b', 1)).toBeNull();
    expect(cache.find('a', 1)).toBe('A');
    expect(cache.find('c', 1)).toBe('C');
  });
});

describe('TokenService with the verified-token cache', () => {
  it('remembers a verified token and gives each firm its own claims', async () => {
    const tokens = new TokenService([keyA]);
    const firmA = claimsFor(newUuid());
    const firmB = claimsFor(newUuid());
    const tokenA = (await tokens.issue(firmA)).accessToken;
    const tokenB = (await tokens.issue(firmB)).accessToken;
    expect(tokens.recentlyVerified(tokenA)).toBeNull();
    expect((await tokens.verify(tokenA)).tenantId).toBe(firmA.tenantId);
    expect((await tokens.verify(tokenB)).tenantId).toBe(firmB.tenantId);
    expect(tokens.recentlyVerified(tokenA)?.tenantId).toBe(firmA.tenantId);
    expect(tokens.recentlyVerified(tokenB)?.userId).toBe(firmB.userId);
    // Cached claims are shared by requests, so nobody can change them.
    expect(Object.isFrozen(tokens.recentlyVerified(tokenA))).toBe(true);
    expect(Object.isFrozen(tokens.recentlyVerified(tokenA)?.roles)).toBe(true);
  });

  it('stops answering from memory at exp, and refuses the token once the full check would', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2026-03-01T12:00:00Z'));
    const tokens = new TokenService([keyA]);
    const token = (await tokens.issue(claimsFor(newUuid()))).accessToken;
    await tokens.verify(token);
    const expiresAtMs = Date.now() + identityLimits.accessTokenTtlSeconds * 1_000;
    vi.setSystemTime(expiresAtMs - 1);
    expect(tokens.recentlyVerified(token)).not.toBeNull();
    vi.setSystemTime(expiresAtMs);
    expect(tokens.recentlyVerified(token)).toBeNull();
    vi.setSystemTime(expiresAtMs + (identityLimits.clockToleranceSeconds + 1) * 1_000);
    expect(await refusal(tokens.verify(token))).toBe('AUTH_TOKEN_INVALID');
    expect(tokens.recentlyVerified(token)).toBeNull();
  });

  it('refuses a cached token at once when its signing key leaves the ring, and keeps it through a rotation', async () => {
    const tokens = new TokenService([keyA]);
    const token = (await tokens.issue(claimsFor(newUuid()))).accessToken;
    await tokens.verify(token);
    // Rotation: B signs, A still verifies until its tokens expire.
    tokens.replaceKeys([keyB, keyA]);
    expect(tokens.recentlyVerified(token)).toBeNull();
    await tokens.verify(token);
    expect(tokens.recentlyVerified(token)).not.toBeNull();
    // A retired: its tokens must fail now, not when the cache entry would have run out.
    tokens.replaceKeys([keyB]);
    expect(tokens.recentlyVerified(token)).toBeNull();
    expect(await refusal(tokens.verify(token))).toBe('AUTH_TOKEN_INVALID');
  });

  it('does not remember a verification that was under way when the keys changed', async () => {
    const tokens = new TokenService([keyA]);
    const token = (await tokens.issue(claimsFor(newUuid()))).accessToken;
    const underWay = tokens.verify(token);
    tokens.replaceKeys([keyB]);
    await underWay;
    expect(tokens.recentlyVerified(token)).toBeNull();
    expect(await refusal(tokens.verify(token))).toBe('AUTH_TOKEN_INVALID');
  });

  it('never caches a refused token, and a forged copy of a cached one is still checked', async () => {
    const tokens = new TokenService([keyA]);
    const stranger = new TokenService([keyB]);
    const claims = claimsFor(newUuid());
    const token = (await tokens.issue(claims)).accessToken;
    await tokens.verify(token);
    const forged = (await stranger.issue(claims)).accessToken;
    expect(await refusal(tokens.verify(forged))).toBe('AUTH_TOKEN_INVALID');
    expect(await refusal(tokens.verify(forged))).toBe('AUTH_TOKEN_INVALID');
    expect(tokens.recentlyVerified(forged)).toBeNull();
    const [header, payload, signature] = token.split('.');
    const tampered = `${header}.${payload}.${signature?.slice(0, -4)}AAAA`;
    expect(await refusal(tokens.verify(tampered))).toBe('AUTH_TOKEN_INVALID');
  });

  it('gives the credential verifier the same caller from memory as from the full check', async () => {
    const tokens = new TokenService([keyA]);
    const credentials = new Credentials(tokens);
    const token = (await tokens.issue({ ...claimsFor(newUuid()), sessionId: 'session-1', amr: ['pwd', 'otp'] }))
      .accessToken;
    const first = await credentials.verify(token);
    expect(tokens.recentlyVerified(token)).not.toBeNull();
    expect(await credentials.verify(token)).toEqual(first);
    expect(first.sessionId).toBe('session-1');
    expect(first.facts).toMatchObject({ kind: 'user', role: 'owner', amr: ['pwd', 'otp'] });
  });

  it('can be turned off', async () => {
    const tokens = new TokenService([keyA], null, { verifiedCacheEntriesMax: 0 });
    const token = (await tokens.issue(claimsFor(newUuid()))).accessToken;
    await tokens.verify(token);
    expect(tokens.recentlyVerified(token)).toBeNull();
  });
});
