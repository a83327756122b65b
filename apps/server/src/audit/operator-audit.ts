import type { RequestOrigin, TenantScopes } from '../platform/database/tenant-scope.ts';
import { AppError } from '../platform/errors.ts';
import type { TenancyService } from '../tenancy/tenancy.service.ts';
import { tenantContextOf } from '../tenancy/tenancy.service.ts';
import { recordAuditEvent } from './audit.service.ts';
import type { AuditEventInput } from './audit.types.ts';

/**
 * Writes an operator's action on a tenant to that tenant's audit log. The change lives in the
 * control plane (the registry, owner role) and the log in the tenant's own placement, which
 * may be another database, so they cannot share a transaction. The tenant's scope is opened
 * first and the change made inside it: a change that fails rolls the event back with it, and
 * the event commits right after the change does. Only a crash between the two commits can
 * leave a change without its event.
 */
export class OperatorAudit {
  readonly #scopes: TenantScopes;
  readonly #tenancy: TenancyService;

  constructor(scopes: TenantScopes, tenancy: TenancyService) {
    this.#scopes = scopes;
    this.#tenancy = tenancy;
  }

  /** Errors: TENANT_NOT_FOUND, and whatever `change` throws. */
  async record<T>(
    tenantId: string,
    origin: RequestOrigin,
    change: () => Promise<T>,
    eventOf: (result: T) => AuditEventInput,
  ): Promise<T> {
    const record = await this.#tenancy.getTenant(tenantId);
    if (record === null) throw new AppError('TENANT_NOT_FOUND');
    return await this.#scopes.run({ ...tenantContextOf(record), origin }, async (db) => {
      const result = await change();
      await recordAuditEvent(db, eventOf(result));
      return result;
    });
  }
}
