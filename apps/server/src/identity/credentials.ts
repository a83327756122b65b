import { decodeJwt } from 'jose';
import { AppError } from '../platform/errors.ts';
import type { CallerFacts } from './authorize.ts';
import { type TokenService, tokenIssuer, type VerifiedClaims } from './tokens.ts';

/** A verified credential of any kind, reduced to what authorisation and the scope need. */
export interface VerifiedCaller {
  tenantId: string;
  userId: string;
  facts: CallerFacts;
  /** Entities the credential is limited to; null: not limited by the credential. */
  entityIds: string[] | null;
  credential: 'password' | 'oidc' | 'apiKey';
  apiKeyId: string | null;
  sessionId: string | null;
}

export interface CredentialVerifier {
  /** Verifies a bearer credential; any failure is AUTH_TOKEN_INVALID. */
  verify(token: string): Promise<VerifiedCaller>;
}

/** Verifies one kind of credential other than the built-in issuer's tokens. */
export interface CredentialKind {
  /** Whether this kind handles the credential (by its prefix, or a JWT's unverified `iss`). */
  accepts(token: string, issuer: string | null): boolean;
  verify(token: string): Promise<VerifiedCaller>;
}

function unverifiedIssuer(token: string): string | null {
  try {
    const issuer = decodeJwt(token).iss;
    return typeof issuer === 'string' ? issuer : null;
  } catch {
    return null;
  }
}

/**
 * Routes a bearer credential to its verifier: the built-in issuer's tokens, then the other
 * kinds (API keys, external OIDC issuers). The unverified issuer only chooses which keys to
 * check the signature with; nothing is trusted before that check.
 */
export class Credentials implements CredentialVerifier {
  readonly #tokens: TokenService;
  readonly #kinds: CredentialKind[] = [];

  constructor(tokens: TokenService) {
    this.#tokens = tokens;
  }

  add(kind: CredentialKind): this {
    this.#kinds.push(kind);
    return this;
  }

  async verify(token: string): Promise<VerifiedCaller> {
    // A built-in token verified moments ago needs neither decoding nor its signature checked again.
    const recent = this.#tokens.recentlyVerified(token);
    if (recent !== null) return callerOf(recent);
    const issuer = unverifiedIssuer(token);
    if (issuer === null || issuer === tokenIssuer) {
      const other = issuer === null ? this.#kinds.find((kind) => kind.accepts(token, null)) : undefined;
      if (other) return await other.verify(token);
      return await this.#verifyBuiltIn(token);
    }
    const kind = this.#kinds.find((candidate) => candidate.accepts(token, issuer));
    if (!kind) throw new AppError('AUTH_TOKEN_INVALID', 'The token comes from an issuer this server does not trust.');
    return await kind.verify(token);
  }

  async #verifyBuiltIn(token: string): Promise<VerifiedCaller> {
    return callerOf(await this.#tokens.verify(token));
  }
}

/** The caller of a built-in access token. */
function callerOf(claims: VerifiedClaims): VerifiedCaller {
  return {
    tenantId: claims.tenantId,
    userId: claims.userId,
    facts: {
      kind: 'user',
      role: claims.role,
      mfa: claims.mfa,
      amr: claims.amr,
      authTimeSeconds: claims.authTime,
    },
    entityIds: claims.entityIds,
    credential: 'password',
    apiKeyId: null,
    sessionId: claims.sessionId,
  };
}
