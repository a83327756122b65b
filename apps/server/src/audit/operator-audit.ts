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

  /**
   * Makes the change, then appends its event to the tenant's log; `eventOf` answers null when
   * the change changed nothing (asking for the state a tenant is already in), which records
   * nothing, as an idempotent replay records nothing.
   * Errors: TENANT_NOT_FOUND, and whatever `change` throws.
   */
  async record<T>(
    tenantId: string,
    origin: RequestOrigin,
    change: () => Promise<T>,
    eventOf: (result: T) => AuditEventInput | null,
  ): Promise<T> {
    const result = await change();
    const event = eventOf(result);
    if (event !== null) await this.#append(tenantId, origin, event);
    return result;
  }

  /**
   * Appends events for changes already made to several tenants at once (issuing a month's
   * invoices), each to its tenant's log. One log that fails does not keep the others from
   * their events: every append is tried, then the first failure is thrown, so the operator
   * sees it. Errors: TENANT_NOT_FOUND, or the failure of a tenant's database.
   */
  async appendEach(
    origin: RequestOrigin,
    events: ReadonlyArray<{ tenantId: string; event: AuditEventInput }>,
  ): Promise<void> {
    const failures: unknown[] = [];
    for (const { tenantId, event } of events) {
      await this.#append(tenantId, origin, event).catch((error: unknown) => failures.push(error));
    }
    if (failures.length > 0) throw failures[0];
  }

  async #append(tenantId: string, origin: RequestOrigin, event: AuditEventInput): Promise<void> {
    const record = await this.#tenancy.getTenant(tenantId);
    if (record === null) throw new AppError('TENANT_NOT_FOUND');
    await this.#scopes.run({ ...tenantContextOf(record), origin }, (db) => recordAuditEvent(db, event));
  }
}
