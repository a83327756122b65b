import type { TenantContext, TenantDb, TenantScopes } from '../platform/database/tenant-scope.ts';
import { AppError } from '../platform/errors.ts';
import { newUuid } from '../platform/ids.ts';
import type { Sealer } from '../platform/local-secrets.ts';
import { type TenancyService, tenantContextOf } from '../tenancy/tenancy.service.ts';
import type { TenantRecord } from '../tenancy/tenancy.types.ts';
import type { TierCatalogue } from '../tenancy/tiers.ts';
import { entityScopedRoles, isRole, type Role } from './access.ts';
import type { AuthEventSink, AuthOrigin } from './auth-events.ts';
import { identityLimits } from './identity.limits.ts';
import type { MfaPolicy } from './mfa-policy.ts';
import { verifyPassword } from './passwords.ts';
import { newSecretToken, parseSecretToken, secretMatches } from './secret-tokens.ts';
import { findRefreshTokenForUpdate, insertRefreshToken, markRefreshTokenUsed, revokeFamily } from './sessions.store.ts';
import { addressThrottle, type FailureCounter, unknownAccountThrottle } from './sign-in-throttle.ts';
import type { MfaStanding, TokenService } from './tokens.ts';
import { matchTotp, recoveryCodeHash } from './totp.ts';
import {
  assignedEntityIds,
  clearFailedSignIns,
  findUserByEmail,
  findUserById,
  recordFailedSignIn,
  type UserAccount,
} from './users.store.ts';

/** Tokens handed to a signed-in user. `refreshToken` is null for an enrolment-only token. */
export interface SessionTokens {
  accessToken: string;
  expiresInSeconds: number;
  refreshToken: string | null;
  mfaEnrolmentRequired: boolean;
}

export type SignInResult = { kind: 'session'; tokens: SessionTokens } | { kind: 'mfa'; challengeToken: string };

export interface IdentityDependencies {
  tenancy: TenancyService;
  scopes: TenantScopes;
  tokens: TokenService;
  sealer: Sealer;
  tiers: TierCatalogue;
  mfaPolicy: MfaPolicy;
  events: AuthEventSink;
  now?: () => number;
}

type Outcome<T> = { ok: true; value: T } | { ok: false; error: AppError };

/**
 * Sign-in with the built-in issuer: passwords (throttled and locked out per account and
 * per source address), the second factor, rotating refresh tokens with reuse detection,
 * step-up and sign-out. Failures that must be remembered (a lockout, a revoked family) are
 * committed before the error is thrown, so the error does not roll them back.
 */
export class IdentityService {
  readonly #deps: IdentityDependencies;
  readonly #addresses: FailureCounter;
  readonly #unknownAccounts: FailureCounter;
  readonly #now: () => number;

  constructor(deps: IdentityDependencies) {
    this.#deps = deps;
    this.#now = deps.now ?? Date.now;
    this.#addresses = addressThrottle(this.#now);
    this.#unknownAccounts = unknownAccountThrottle(this.#now);
  }

  /** The tenant's scope over every entity (identity bookkeeping, not a user's view). */
  async activeTenant(tenantId: string | null): Promise<TenantRecord | null> {
    const tenant = tenantId ? await this.#deps.tenancy.lookup(tenantId) : null;
    return tenant && tenant.status === 'active' ? tenant : null;
  }

  mfaRequired(tenant: TenantRecord, role: Role): boolean {
    return this.#deps.mfaPolicy.requiredFor(this.#deps.tiers.find(tenant.tier), tenant.regulatoryTier, role);
  }

  /**
   * Password sign-in to one firm. Every failure — unknown tenant, inactive tenant, unknown
   * email, disabled user, wrong password — is the same AUTH_LOGIN_FAILED; too many failures
   * for the account or from the address are AUTH_SIGN_IN_THROTTLED (with Retry-After).
   */
  async signIn(tenantId: string | null, email: string, password: string, origin: AuthOrigin): Promise<SignInResult> {
    const address = origin.sourceAddress ?? 'unknown';
    const addressBlockedMs = this.#addresses.blockedForMs(address);
    if (addressBlockedMs > 0) throw throttled(addressBlockedMs);
    const tenant = await this.activeTenant(tenantId);
    const normalised = email.trim().toLowerCase();
    const context = tenant ? tenantContextOf(tenant) : null;
    const user = context ? await this.#deps.scopes.runOne(context, (db) => findUserByEmail(db, normalised)) : null;
    const accountKey = `${tenantId}:${normalised}`;
    const lockedMs = user?.lockedUntil
      ? user.lockedUntil.getTime() - this.#now()
      : this.#unknownAccounts.blockedForMs(accountKey);
    if (lockedMs > 0) {
      if (context)
        await this.#record(context, 'auth.sign_in.locked_out', user?.id ?? null, origin, { email: normalised });
      throw throttled(lockedMs);
    }
    const matches = await verifyPassword(user?.passwordHash ?? null, password);
    if (!tenant || !context || !user || !matches || user.status !== 'active') {
      this.#addresses.fail(address);
      if (!user) this.#unknownAccounts.fail(accountKey);
      if (context) await this.#recordFailure(context, user, normalised, origin);
      throw new AppError('AUTH_LOGIN_FAILED');
    }
    this.#addresses.clear(address);
    return await this.#deps.scopes.run(context, async (db) => {
      await clearFailedSignIns(db, user.id);
      if (user.mfaConfirmed) {
        await this.#deps.events.record(db, { action: 'auth.sign_in.password_verified', actorUserId: user.id, origin });
        return { kind: 'mfa' as const, challengeToken: await this.#deps.tokens.issueMfaChallenge(tenant.id, user.id) };
      }
      await this.#deps.events.record(db, { action: 'auth.sign_in.succeeded', actorUserId: user.id, origin });
      return { kind: 'session' as const, tokens: await this.startSession(db, tenant, user, ['pwd']) };
    });
  }

  async #recordFailure(context: TenantContext, user: UserAccount | null, email: string, origin: AuthOrigin) {
    await this.#deps.scopes.run(context, async (db) => {
      const { locked } = user
        ? await recordFailedSignIn(db, user.id, identityLimits.accountFailuresMax, identityLimits.accountLockoutSeconds)
        : { locked: false };
      await this.#deps.events.record(db, {
        action: 'auth.sign_in.failed',
        actorUserId: user?.id ?? null,
        summary: { email },
        origin,
      });
      if (locked)
        await this.#deps.events.record(db, { action: 'auth.account.locked', actorUserId: user?.id ?? null, origin });
    });
  }

  async #record(context: TenantContext, action: string, userId: string | null, origin: AuthOrigin, summary = {}) {
    await this.#deps.scopes.run(context, (db) =>
      this.#deps.events.record(db, { action, actorUserId: userId, origin, summary }),
    );
  }

  /**
   * Starts a session (a refresh-token family) and issues its first tokens. A user who must
   * use MFA but has not enrolled gets an enrolment-only access token and no refresh token.
   */
  async startSession(db: TenantDb, tenant: TenantRecord, user: UserAccount, amr: string[]): Promise<SessionTokens> {
    const role = roleOf(user);
    const mfa: MfaStanding = user.mfaConfirmed ? 'enrolled' : this.mfaRequired(tenant, role) ? 'enrol' : 'none';
    const authTime = Math.floor(this.#now() / 1000);
    if (mfa === 'enrol') {
      const access = await this.#issueAccess(db, tenant, user, { amr, authTime, sessionId: null, mfa });
      return { ...access, refreshToken: null, mfaEnrolmentRequired: true };
    }
    const familyId = newUuid();
    const refreshToken = await this.#issueRefresh(db, tenant.id, user.id, familyId, amr, new Date(authTime * 1000));
    const access = await this.#issueAccess(db, tenant, user, { amr, authTime, sessionId: familyId, mfa });
    return { ...access, refreshToken, mfaEnrolmentRequired: false };
  }

  async #issueRefresh(
    db: TenantDb,
    tenantId: string,
    userId: string,
    familyId: string,
    amr: string[],
    authTime: Date,
  ): Promise<string> {
    const id = newUuid();
    const { token, hash } = newSecretToken('refresh', tenantId, id);
    const expiresAt = new Date(this.#now() + identityLimits.refreshTokenTtlSeconds * 1000);
    await insertRefreshToken(db, { id, familyId, userId, tokenHash: hash, amr, authTime, expiresAt });
    return token;
  }

  async #issueAccess(
    db: TenantDb,
    tenant: TenantRecord,
    user: UserAccount,
    session: { amr: string[]; authTime: number; sessionId: string | null; mfa: MfaStanding },
  ): Promise<{ accessToken: string; expiresInSeconds: number }> {
    const role = roleOf(user);
    const entityIds = entityScopedRoles.includes(role) ? await assignedEntityIds(db, user.id) : null;
    return await this.#deps.tokens.issue({
      userId: user.id,
      tenantId: tenant.id,
      tier: tenant.tier,
      roles: [role],
      entityIds,
      ...session,
    });
  }

  /**
   * Exchanges a refresh token for new tokens of the same session; the old one is spent.
   * Presenting a spent token again means it was copied: the whole session is revoked.
   * Errors: AUTH_REFRESH_INVALID, AUTH_REFRESH_REUSED.
   */
  async refresh(token: string, origin: AuthOrigin): Promise<SessionTokens> {
    const parsed = parseSecretToken('refresh', token);
    const tenant = parsed ? await this.activeTenant(parsed.tenantId) : null;
    if (!parsed || !tenant) throw new AppError('AUTH_REFRESH_INVALID');
    const outcome = await this.#deps.scopes.run(
      tenantContextOf(tenant),
      async (db): Promise<Outcome<SessionTokens>> => {
        const row = await findRefreshTokenForUpdate(db, parsed.id);
        if (!row || !secretMatches(parsed.secret, row.tokenHash) || row.revokedAt !== null) {
          return { ok: false, error: new AppError('AUTH_REFRESH_INVALID') };
        }
        if (row.usedAt !== null) {
          await revokeFamily(db, row.familyId);
          await this.#deps.events.record(db, {
            action: 'auth.refresh.reused',
            actorUserId: row.userId,
            summary: { session: row.familyId },
            origin,
          });
          return { ok: false, error: new AppError('AUTH_REFRESH_REUSED') };
        }
        const user = await findUserById(db, row.userId);
        if (row.expiresAt.getTime() <= this.#now() || !user || user.status !== 'active') {
          await revokeFamily(db, row.familyId);
          return { ok: false, error: new AppError('AUTH_REFRESH_INVALID') };
        }
        await markRefreshTokenUsed(db, row.id);
        const refreshToken = await this.#issueRefresh(db, tenant.id, user.id, row.familyId, row.amr, row.authTime);
        const mfa: MfaStanding = user.mfaConfirmed ? 'enrolled' : 'none';
        const authTime = Math.floor(row.authTime.getTime() / 1000);
        const access = await this.#issueAccess(db, tenant, user, {
          amr: row.amr,
          authTime,
          sessionId: row.familyId,
          mfa,
        });
        return { ok: true, value: { ...access, refreshToken, mfaEnrolmentRequired: false } };
      },
    );
    if (!outcome.ok) throw outcome.error;
    return outcome.value;
  }

  /**
   * Completes a sign-in with a TOTP code or a recovery code after the password step.
   * Errors: AUTH_TOKEN_INVALID (challenge), AUTH_MFA_CODE_INVALID.
   */
  async verifyMfa(challengeToken: string, code: string, origin: AuthOrigin): Promise<SessionTokens> {
    const challenge = await this.#deps.tokens.verifyMfaChallenge(challengeToken);
    const tenant = await this.activeTenant(challenge.tenantId);
    if (!tenant) throw new AppError('AUTH_TOKEN_INVALID');
    const outcome = await this.#deps.scopes.run(
      tenantContextOf(tenant),
      async (db): Promise<Outcome<SessionTokens>> => {
        const user = await findUserById(db, challenge.userId, true);
        if (user?.status !== 'active' || !user.mfaConfirmed)
          return { ok: false, error: new AppError('AUTH_TOKEN_INVALID') };
        const method = await this.checkSecondFactor(db, user, code);
        if (method === null) {
          await this.#deps.events.record(db, { action: 'auth.mfa.failed', actorUserId: user.id, origin });
          return { ok: false, error: new AppError('AUTH_MFA_CODE_INVALID') };
        }
        await this.#deps.events.record(db, {
          action: 'auth.mfa.verified',
          actorUserId: user.id,
          summary: { method },
          origin,
        });
        return { ok: true, value: await this.startSession(db, tenant, user, ['pwd', 'otp']) };
      },
    );
    if (!outcome.ok) throw outcome.error;
    return outcome.value;
  }

  /**
   * Checks a TOTP code (refusing a step already used) or spends a recovery code; returns
   * which, or null. The caller holds the user row locked.
   */
  async checkSecondFactor(db: TenantDb, user: UserAccount, code: string): Promise<'totp' | 'recovery' | null> {
    if (!user.mfaConfirmed || user.mfaSecretSealed === null) return null;
    const step = matchTotp(this.#deps.sealer.open(user.mfaSecretSealed), code.trim(), this.#now());
    if (step !== null) {
      if (user.mfaLastStep !== null && step <= user.mfaLastStep) return null;
      await db.query('update users set mfa_last_step = $2 where id = $1', [user.id, step]);
      return 'totp';
    }
    const spent = await db.query(
      'update mfa_recovery_codes set used_at = now() where user_id = $1 and code_hash = $2 and used_at is null',
      [user.id, recoveryCodeHash(code)],
    );
    return spent.rowCount === 1 ? 'recovery' : null;
  }

  /**
   * Step-up: a signed-in user proves a second factor again and gets an access token with a
   * fresh `auth_time` and `otp` in `amr`, for sensitive operations. Errors: AUTH_MFA_CODE_INVALID.
   */
  async stepUp(context: TenantContext, userId: string, sessionId: string | null, code: string, origin: AuthOrigin) {
    const tenant = await this.activeTenant(context.tenantId);
    if (!tenant) throw new AppError('AUTH_TOKEN_INVALID');
    const outcome = await this.#deps.scopes.run(
      tenantContextOf(tenant),
      async (db): Promise<Outcome<SessionTokens>> => {
        const user = await findUserById(db, userId, true);
        if (user?.status !== 'active') return { ok: false, error: new AppError('AUTH_TOKEN_INVALID') };
        const method = await this.checkSecondFactor(db, user, code);
        if (method === null) {
          await this.#deps.events.record(db, { action: 'auth.step_up.failed', actorUserId: user.id, origin });
          return { ok: false, error: new AppError('AUTH_MFA_CODE_INVALID') };
        }
        await this.#deps.events.record(db, {
          action: 'auth.step_up.verified',
          actorUserId: user.id,
          summary: { method },
          origin,
        });
        const authTime = Math.floor(this.#now() / 1000);
        const access = await this.#issueAccess(db, tenant, user, {
          amr: ['pwd', 'otp'],
          authTime,
          sessionId,
          mfa: 'enrolled',
        });
        return { ok: true, value: { ...access, refreshToken: null, mfaEnrolmentRequired: false } };
      },
    );
    if (!outcome.ok) throw outcome.error;
    return outcome.value;
  }

  /** Ends the caller's session (its refresh family), or every session of the user. */
  async signOut(
    context: TenantContext,
    userId: string,
    sessionId: string | null,
    everywhere: boolean,
    origin: AuthOrigin,
  ) {
    const tenant = await this.activeTenant(context.tenantId);
    if (!tenant) throw new AppError('AUTH_TOKEN_INVALID');
    return await this.#deps.scopes.run(tenantContextOf(tenant), async (db) => {
      const revoked = everywhere
        ? ((
            await db.query('update refresh_tokens set revoked_at = now() where user_id = $1 and revoked_at is null', [
              userId,
            ])
          ).rowCount ?? 0)
        : sessionId === null
          ? 0
          : await revokeFamily(db, sessionId);
      await this.#deps.events.record(db, {
        action: 'auth.sign_out',
        actorUserId: userId,
        summary: { everywhere, revoked },
        origin,
      });
      return { revokedTokens: revoked };
    });
  }
}

function roleOf(user: UserAccount): Role {
  const role = user.roles[0] ?? '';
  if (!isRole(role)) throw new AppError('AUTH_LOGIN_FAILED');
  return role;
}

function throttled(blockedMs: number): AppError {
  const retryAfterSeconds = Math.max(1, Math.ceil(blockedMs / 1000));
  return new AppError('AUTH_SIGN_IN_THROTTLED', `Try again in ${retryAfterSeconds} seconds.`, { retryAfterSeconds });
}
