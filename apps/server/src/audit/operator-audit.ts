import type { RequestOrigin, TenantScopes } from '../platform/database/tenant-scope.ts';
import { AppError } from '../platform/errors.ts';
import type { TenancyService } from '../tenancy/tenancy.service.ts';
import { tenantContextOf } from '../tenancy/tenancy.service.ts';
import { recordAuditEvent } from './audit.service.ts';
import type { AuditEventInput } from './audit.types.ts';

/**
 * Writes an operator's action on a tenant to that tenant's audit log. The change lives in the
 * control plane (the registry, owner role) and the log in the tenant's own placement, which
 * may be another database, so they cannot share a transaction. The change is made first; a
 * change that fails records nothing, and the event is appended right after the change
 * commits, in the placement the registry names then. Only a failure between the two (a
 * crash, the tenant's database unreachable) can leave a change without its event; the
 * request then fails, so the operator sees it. Holding no tenant connection during the
 * change keeps it clear of the tenant's connection bulkhead.
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
    const result = await change();
    const record = await this.#tenancy.getTenant(tenantId);
    if (record === null) throw new AppError('TENANT_NOT_FOUND');
    await this.#scopes.run({ ...tenantContextOf(record), origin }, (db) => recordAuditEvent(db, eventOf(result)));
    return result;
  }
}
