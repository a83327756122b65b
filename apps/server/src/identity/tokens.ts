import { createLocalJWKSet, type JSONWebKeySet, errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import { assert } from '../platform/assert.ts';
import { AppError } from '../platform/errors.ts';
import { formatId, parseId } from '../platform/ids.ts';
import { isRole, type Role } from './access.ts';
import { identityLimits } from './identity.limits.ts';
import { type SigningKey, signingAlgorithm } from './signing-keys.ts';
import { VerifiedTokenCache } from './verified-token-cache.ts';

export const tokenIssuer = 'urn:countinghouse:issuer';
export const tokenAudience = 'urn:countinghouse:api';
/** The audience of the token between password and second factor: never accepted as access. */
export const mfaChallengeAudience = 'urn:countinghouse:mfa';

/**
 * The user's MFA standing when the token was issued: `none` (no second factor, none
 * required), `enrolled` (has one; step-up applies), `enrol` (must enrol before anything
 * else: the token only reaches the caller's own MFA routes).
 */
export type MfaStanding = 'none' | 'enrolled' | 'enrol';

/** The verified claims of an access token; ids are uuids. */
export interface AccessClaims {
  userId: string;
  tenantId: string;
  tier: string;
  roles: string[];
  /** Entities the user is assigned to (staff, client); null: every entity of the firm. */
  entityIds?: string[] | null;
  /** Authentication methods (RFC 8176): `pwd`, and `otp` after a second factor. */
  amr?: string[];
  /** When the user last authenticated (seconds since the epoch); step-up reads it. */
  authTime?: number;
  /** The refresh-token family (sign-in session), for sign-out. */
  sessionId?: string | null;
  mfa?: MfaStanding;
}

export type VerifiedClaims = Required<AccessClaims> & { role: Role };

export interface TokenServiceOptions {
  /** Verified tokens remembered (verified-token-cache.ts); 0 turns the cache off. */
  verifiedCacheEntriesMax?: number;
  /** Milliseconds since the epoch, for the cache's expiry; tests may step it. */
  clock?: () => number;
}

export interface IssuedToken {
  accessToken: string;
  expiresInSeconds: number;
}

const mfaStandings: readonly string[] = ['none', 'enrolled', 'enrol'];

/**
 * Issues and verifies the built-in issuer's access tokens (asymmetric, short-lived). The
 * newest signing key signs; every active key verifies, so tokens signed before a rotation
 * stay valid until they expire. A token signed by a key this instance has not loaded yet
 * (another instance rotated) makes it reload the keys, at most once per interval. Verified
 * tokens are remembered until they expire or the key ring changes, whichever comes first.
 */
export class TokenService {
  #keys: SigningKey[] = [];
  #jwks: JSONWebKeySet = { keys: [] };
  #keySet: ReturnType<typeof createLocalJWKSet> = createLocalJWKSet({ keys: [] });
  readonly #reload: (() => Promise<SigningKey[]>) | null;
  readonly #verified: VerifiedTokenCache<VerifiedClaims>;
  readonly #clock: () => number;
  #lastReloadMs = 0;

  constructor(
    keys: SigningKey[],
    reload: (() => Promise<SigningKey[]>) | null = null,
    options: TokenServiceOptions = {},
  ) {
    this.#reload = reload;
    this.#verified = new VerifiedTokenCache(
      options.verifiedCacheEntriesMax ?? identityLimits.verifiedTokenCacheEntriesMax,
    );
    this.#clock = options.clock ?? Date.now;
    this.replaceKeys(keys);
  }

  get jwks(): JSONWebKeySet {
    return this.#jwks;
  }

  /** Installs a new key ring (newest first), e.g. after a rotation; tokens are verified afresh against it. */
  replaceKeys(keys: SigningKey[]): void {
    assert(keys.length > 0, 'the token service needs at least one signing key');
    this.#verified.clear();
    this.#keys = keys;
    this.#jwks = { keys: keys.map((key) => key.publicJwk) };
    this.#keySet = createLocalJWKSet(this.#jwks);
  }

  async issue(claims: AccessClaims): Promise<IssuedToken> {
    const key = this.#keys[0];
    assert(key !== undefined, 'no signing key');
    assert(
      claims.roles.length === 1 && isRole(claims.roles[0] ?? ''),
      'an access token carries exactly one known role',
    );
    const ttl = identityLimits.accessTokenTtlSeconds;
    const nowSeconds = Math.floor(Date.now() / 1000);
    const payload: Record<string, unknown> = {
      tenant_id: formatId('tenant', claims.tenantId),
      tier: claims.tier,
      roles: claims.roles,
      amr: claims.amr ?? ['pwd'],
      auth_time: claims.authTime ?? nowSeconds,
      mfa: claims.mfa ?? 'none',
    };
    if (claims.entityIds != null) payload.ent = claims.entityIds.map((id) => formatId('entity', id));
    if (claims.sessionId != null) payload.sid = claims.sessionId;
    const accessToken = await new SignJWT(payload)
      .setProtectedHeader({ alg: signingAlgorithm, kid: key.kid, typ: 'at+jwt' })
      .setIssuer(tokenIssuer)
      .setAudience(tokenAudience)
      .setSubject(formatId('user', claims.userId))
      .setIssuedAt()
      .setExpirationTime(`${ttl}s`)
      .sign(key.privateKey);
    return { accessToken, expiresInSeconds: ttl };
  }

  /** A short-lived token proving the password step of one user's sign-in (typ `mfa+jwt`). */
  async issueMfaChallenge(tenantId: string, userId: string): Promise<string> {
    const key = this.#keys[0];
    assert(key !== undefined, 'no signing key');
    return await new SignJWT({ tenant_id: formatId('tenant', tenantId) })
      .setProtectedHeader({ alg: signingAlgorithm, kid: key.kid, typ: 'mfa+jwt' })
      .setIssuer(tokenIssuer)
      .setAudience(mfaChallengeAudience)
      .setSubject(formatId('user', userId))
      .setIssuedAt()
      .setExpirationTime(`${identityLimits.mfaChallengeTtlSeconds}s`)
      .sign(key.privateKey);
  }

  /** The tenant and user of a valid MFA challenge token; any failure is AUTH_TOKEN_INVALID. */
  async verifyMfaChallenge(token: string): Promise<{ tenantId: string; userId: string }> {
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, this.#keySet, {
        algorithms: [signingAlgorithm],
        issuer: tokenIssuer,
        audience: mfaChallengeAudience,
        typ: 'mfa+jwt',
        clockTolerance: identityLimits.clockToleranceSeconds,
        requiredClaims: ['sub', 'exp'],
      }));
    } catch {
      throw new AppError('AUTH_TOKEN_INVALID', 'The MFA token is invalid or expired; sign in again.');
    }
    const tenantId = typeof payload.tenant_id === 'string' ? parseId('tenant', payload.tenant_id) : null;
    const userId = typeof payload.sub === 'string' ? parseId('user', payload.sub) : null;
    if (tenantId === null || userId === null) throw new AppError('AUTH_TOKEN_INVALID');
    return { tenantId, userId };
  }

  /** The claims of `token` when this instance verified it recently and it has not expired; null otherwise. */
  recentlyVerified(token: string): VerifiedClaims | null {
    return this.#verified.find(token, this.#clock());
  }

  /** Verifies signature, algorithm, issuer, audience and expiry; any failure is AUTH_TOKEN_INVALID. */
  async verify(token: string): Promise<VerifiedClaims> {
    const cached = this.recentlyVerified(token);
    if (cached !== null) return cached;
    const generation = this.#verified.generation;
    const payload = await this.#verifySignature(token);
    const claims = claimsOf(payload);
    // jose required `exp`; it is a number of seconds.
    const expiresAtMs = Number(payload.exp) * 1_000;
    this.#verified.remember(token, claims, expiresAtMs, generation, this.#clock());
    return claims;
  }

  async #verifySignature(token: string): Promise<Record<string, unknown>> {
    try {
      return await this.#jwtVerify(token);
    } catch (error) {
      if (
        error instanceof joseErrors.JWKSNoMatchingKey &&
        this.#reload !== null &&
        Date.now() - this.#lastReloadMs > identityLimits.signingKeyReloadIntervalMs
      ) {
        this.#lastReloadMs = Date.now();
        this.replaceKeys(await this.#reload());
        return await this.#verifySignature(token);
      }
      if (error instanceof joseErrors.JOSEError) {
        throw new AppError(
          'AUTH_TOKEN_INVALID',
          error.code === 'ERR_JWT_EXPIRED' ? 'The token has expired.' : undefined,
        );
      }
      throw error;
    }
  }

  async #jwtVerify(token: string): Promise<Record<string, unknown>> {
    const { payload } = await jwtVerify(token, this.#keySet, {
      algorithms: [signingAlgorithm],
      issuer: tokenIssuer,
      audience: tokenAudience,
      typ: 'at+jwt',
      clockTolerance: identityLimits.clockToleranceSeconds,
      requiredClaims: ['sub', 'exp', 'iat'],
    });
    return payload;
  }
}

/**
 * The access claims of a verified payload, frozen because cached claims are shared by every
 * request that presents the token. AUTH_TOKEN_INVALID when a claim is missing or malformed.
 */
function claimsOf(payload: Record<string, unknown>): VerifiedClaims {
  const tenantId = typeof payload.tenant_id === 'string' ? parseId('tenant', payload.tenant_id) : null;
  const userId = typeof payload.sub === 'string' ? parseId('user', payload.sub) : null;
  const roles = payload.roles;
  const role = isStringArray(roles) && roles.length === 1 && isRole(roles[0] ?? '') ? (roles[0] as Role) : null;
  const entityIds = payload.ent === undefined ? null : entityIdsOf(payload.ent);
  const amr = payload.amr;
  if (
    tenantId === null ||
    userId === null ||
    typeof payload.tier !== 'string' ||
    role === null ||
    !isStringArray(roles) ||
    entityIds === undefined ||
    !isStringArray(amr) ||
    typeof payload.auth_time !== 'number' ||
    typeof payload.mfa !== 'string' ||
    !mfaStandings.includes(payload.mfa)
  ) {
    throw new AppError('AUTH_TOKEN_INVALID', 'The token lacks tenant, user, tier, role or authentication claims.');
  }
  return Object.freeze({
    tenantId,
    userId,
    tier: payload.tier,
    roles: frozen(roles),
    role,
    entityIds: entityIds === null ? null : frozen(entityIds),
    amr: frozen(amr),
    authTime: payload.auth_time,
    sessionId: typeof payload.sid === 'string' ? payload.sid : null,
    mfa: payload.mfa as MfaStanding,
  });
}

function frozen<Items extends unknown[]>(items: Items): Items {
  Object.freeze(items);
  return items;
}

/** Entity uuids from the `ent` claim; undefined when the claim is malformed. */
function entityIdsOf(value: unknown): string[] | undefined {
  if (!isStringArray(value) || value.length > identityLimits.entityAssignmentsMax) return undefined;
  const ids = value.map((id) => parseId('entity', id));
  return ids.every((id) => id !== null) ? (ids as string[]) : undefined;
}

export function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === 'string');
}
