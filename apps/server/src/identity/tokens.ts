import { createLocalJWKSet, type JSONWebKeySet, errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import { assert } from '../platform/assert.ts';
import { AppError } from '../platform/errors.ts';
import { formatId, parseId } from '../platform/ids.ts';
import { identityLimits } from './identity.limits.ts';
import { type SigningKey, signingAlgorithm } from './signing-keys.ts';

export const tokenIssuer = 'urn:countinghouse:issuer';
export const tokenAudience = 'urn:countinghouse:api';

/** The verified claims of an access token; ids are uuids. */
export interface AccessClaims {
  userId: string;
  tenantId: string;
  tier: string;
  roles: string[];
}

export interface IssuedToken {
  accessToken: string;
  expiresInSeconds: number;
}

/** Issues and verifies the built-in issuer's access tokens (asymmetric, short-lived). */
export class TokenService {
  readonly #keys: SigningKey[];
  readonly #jwks: JSONWebKeySet;
  readonly #keySet: ReturnType<typeof createLocalJWKSet>;

  constructor(keys: SigningKey[]) {
    assert(keys.length > 0, 'the token service needs at least one signing key');
    this.#keys = keys;
    this.#jwks = { keys: keys.map((key) => key.publicJwk) };
    this.#keySet = createLocalJWKSet(this.#jwks);
  }

  get jwks(): JSONWebKeySet {
    return this.#jwks;
  }

  async issue(claims: AccessClaims): Promise<IssuedToken> {
    const key = this.#keys[0];
    assert(key !== undefined, 'no signing key');
    const ttl = identityLimits.accessTokenTtlSeconds;
    const accessToken = await new SignJWT({
      tenant_id: formatId('tenant', claims.tenantId),
      tier: claims.tier,
      roles: claims.roles,
    })
      .setProtectedHeader({ alg: signingAlgorithm, kid: key.kid, typ: 'at+jwt' })
      .setIssuer(tokenIssuer)
      .setAudience(tokenAudience)
      .setSubject(formatId('user', claims.userId))
      .setIssuedAt()
      .setExpirationTime(`${ttl}s`)
      .sign(key.privateKey);
    return { accessToken, expiresInSeconds: ttl };
  }

  /** Verifies signature, algorithm, issuer, audience and expiry; any failure is AUTH_TOKEN_INVALID. */
  async verify(token: string): Promise<AccessClaims> {
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, this.#keySet, {
        algorithms: [signingAlgorithm],
        issuer: tokenIssuer,
        audience: tokenAudience,
        typ: 'at+jwt',
        clockTolerance: identityLimits.clockToleranceSeconds,
        requiredClaims: ['sub', 'exp', 'iat'],
      }));
    } catch (error) {
      if (error instanceof joseErrors.JOSEError) {
        throw new AppError(
          'AUTH_TOKEN_INVALID',
          error.code === 'ERR_JWT_EXPIRED' ? 'The token has expired.' : undefined,
        );
      }
      throw error;
    }
    const tenantId = typeof payload.tenant_id === 'string' ? parseId('tenant', payload.tenant_id) : null;
    const userId = typeof payload.sub === 'string' ? parseId('user', payload.sub) : null;
    const roles = payload.roles;
    if (tenantId === null || userId === null || typeof payload.tier !== 'string' || !isStringArray(roles)) {
      throw new AppError('AUTH_TOKEN_INVALID', 'The token lacks tenant, user, tier or role claims.');
    }
    return { tenantId, userId, tier: payload.tier, roles };
  }
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === 'string');
}
