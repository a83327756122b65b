import type { TenantScopes } from '../platform/database/tenant-scope.ts';
import { AppError } from '../platform/errors.ts';
import { type TenancyService, tenantContextOf } from '../tenancy/tenancy.service.ts';
import { verifyPassword } from './passwords.ts';
import type { IssuedToken, TokenService } from './tokens.ts';
import { findUserByEmail } from './users.store.ts';

/** Sign-in with the built-in issuer. */
export class IdentityService {
  readonly #tenancy: TenancyService;
  readonly #scopes: TenantScopes;
  readonly #tokens: TokenService;

  constructor(tenancy: TenancyService, scopes: TenantScopes, tokens: TokenService) {
    this.#tenancy = tenancy;
    this.#scopes = scopes;
    this.#tokens = tokens;
  }

  /**
   * Password sign-in to one tenant. The user is looked up inside that tenant's scope, so a
   * user of another firm with the same email cannot match. Every failure — unknown tenant,
   * inactive tenant, unknown email, wrong password — is the same AUTH_LOGIN_FAILED.
   */
  async signIn(tenantId: string | null, email: string, password: string): Promise<IssuedToken> {
    const tenant = tenantId ? await this.#tenancy.lookup(tenantId) : null;
    const user =
      tenant && tenant.status === 'active'
        ? await this.#scopes.run(tenantContextOf(tenant), (db) => findUserByEmail(db, email.toLowerCase()))
        : null;
    const passwordMatches = await verifyPassword(user?.passwordHash ?? null, password);
    if (!tenant || !user || !passwordMatches) throw new AppError('AUTH_LOGIN_FAILED');
    return await this.#tokens.issue({ userId: user.id, tenantId: tenant.id, tier: tenant.tier, roles: user.roles });
  }
}
