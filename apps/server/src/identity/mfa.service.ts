import type { TenantContext, TenantScopes } from '../platform/database/tenant-scope.ts';
import { AppError } from '../platform/errors.ts';
import type { Sealer } from '../platform/local-secrets.ts';
import { tenantContextOf } from '../tenancy/tenancy.service.ts';
import type { AuthEventSink, AuthOrigin } from './auth-events.ts';
import type { IdentityService, SessionTokens } from './identity.service.ts';
import { revokeUserSessions } from './sessions.store.ts';
import { matchTotp, newRecoveryCodes, newTotpSecret, totpUri } from './totp.ts';
import { findUserById } from './users.store.ts';

type Outcome<T> = { ok: true; value: T } | { ok: false; error: AppError };

/**
 * TOTP enrolment: start (a new secret, sealed under the master key, not yet in force), then
 * confirm with a code from the app, which puts it in force, issues ten recovery codes (shown
 * once, stored hashed), ends the user's other sessions and starts a new one with `otp`.
 */
export class MfaService {
  readonly #scopes: TenantScopes;
  readonly #sealer: Sealer;
  readonly #identity: IdentityService;
  readonly #events: AuthEventSink;

  constructor(scopes: TenantScopes, sealer: Sealer, identity: IdentityService, events: AuthEventSink) {
    this.#scopes = scopes;
    this.#sealer = sealer;
    this.#identity = identity;
    this.#events = events;
  }

  /** Errors: IDENTITY_MFA_ALREADY_ENROLLED. */
  async startTotp(context: TenantContext, userId: string): Promise<{ secret: string; otpauthUri: string }> {
    return await this.#scopes.run(context, async (db) => {
      const user = await findUserById(db, userId, true);
      if (!user) throw new AppError('AUTH_TOKEN_INVALID');
      if (user.mfaConfirmed) throw new AppError('IDENTITY_MFA_ALREADY_ENROLLED');
      const secret = newTotpSecret();
      await db.query(
        'update users set mfa_secret_sealed = $2, mfa_last_step = null, updated_at = now() where id = $1',
        [userId, this.#sealer.seal(secret)],
      );
      return { secret, otpauthUri: totpUri(secret, user.email) };
    });
  }

  /** Errors: IDENTITY_MFA_NOT_STARTED, IDENTITY_MFA_ALREADY_ENROLLED, AUTH_MFA_CODE_INVALID. */
  async confirmTotp(
    context: TenantContext,
    userId: string,
    code: string,
    origin: AuthOrigin,
  ): Promise<{ recoveryCodes: string[]; tokens: SessionTokens }> {
    const tenant = await this.#identity.activeTenant(context.tenantId);
    if (!tenant) throw new AppError('AUTH_TOKEN_INVALID');
    const outcome = await this.#scopes.run(tenantContextOf(tenant), async (db) => {
      const user = await findUserById(db, userId, true);
      if (!user) throw new AppError('AUTH_TOKEN_INVALID');
      if (user.mfaConfirmed) throw new AppError('IDENTITY_MFA_ALREADY_ENROLLED');
      if (user.mfaSecretSealed === null) throw new AppError('IDENTITY_MFA_NOT_STARTED');
      const step = matchTotp(this.#sealer.open(user.mfaSecretSealed), code.trim());
      if (step === null) {
        await this.#events.record(db, { action: 'auth.mfa.enrol_failed', actorUserId: userId, origin });
        return { ok: false, error: new AppError('AUTH_MFA_CODE_INVALID') } as Outcome<never>;
      }
      await db.query(
        'update users set mfa_confirmed_at = now(), mfa_last_step = $2, updated_at = now() where id = $1',
        [userId, step],
      );
      const { codes, hashes } = newRecoveryCodes();
      await db.query('delete from mfa_recovery_codes where user_id = $1', [userId]);
      await db.query(
        `insert into mfa_recovery_codes (tenant_id, user_id, code_hash) select $1, $2, unnest($3::text[])`,
        [db.tenantId, userId, hashes],
      );
      await revokeUserSessions(db, userId);
      await this.#events.record(db, {
        action: 'auth.mfa.enrolled',
        actorUserId: userId,
        summary: { method: 'totp' },
        origin,
      });
      const enrolled = { ...user, mfaConfirmed: true, mfaLastStep: step };
      const tokens = await this.#identity.startSession(db, tenant, enrolled, ['pwd', 'otp']);
      return { ok: true, value: { recoveryCodes: codes, tokens } } as const;
    });
    if (!outcome.ok) throw outcome.error;
    return outcome.value;
  }
}
