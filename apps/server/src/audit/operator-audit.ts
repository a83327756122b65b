import type { RequestOrigin, TenantScopes } from '../platform/database/tenant-scope.ts';
import { AppError } from '../platform/errors.ts';
import type { TenancyService } from '../tenancy/tenancy.service.ts';
import { tenantContextOf } from '../tenancy/tenancy.service.ts';
import { recordAuditEvent } from './audit.service.ts';
import { hasEventOn } from './audit.store.ts';
import type { AuditEventInput } from './audit.types.ts';

/**
 * Writes an operator's action on a tenant to that tenant's audit log. The change lives in the
 * control plane (the registry, owner role) and the log in the tenant's own placement, which
 * may be another database, so they cannot share a transaction. The change is made first; a
 * change that fails records nothing, and the event is appended right after the change
 * commits, in the placement the registry names then. Only a failure between the two (a
 * crash, the tenant's database unreachable) can leave a change without its event; the
 * request then fails, so the operator sees it. Issued invoices keep their events in an
 * outbox until written (`appendOnce`, migration 0025), so none of theirs is lost that way.
 * Holding no tenant connection during the change keeps it clear of the tenant's connection
 * bulkhead.
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
   * Appends the event for a change already made unless the tenant's log holds an event of the
   * same action on the same resource: a retried append (the outbox of issued invoices) writes
   * it once. The check and the append share the tenant's transaction.
   * Errors: TENANT_NOT_FOUND, or the failure of the tenant's database.
   */
  async appendOnce(tenantId: string, origin: RequestOrigin, event: AuditEventInput): Promise<void> {
    await this.#append(tenantId, origin, event, true);
  }

  async #append(tenantId: string, origin: RequestOrigin, event: AuditEventInput, once = false): Promise<void> {
    const record = await this.#tenancy.getTenant(tenantId);
    if (record === null) throw new AppError('TENANT_NOT_FOUND');
    await this.#scopes.run({ ...tenantContextOf(record), origin }, async (db) => {
      if (once && event.resource && (await hasEventOn(db, event.action, event.resource))) return;
      await recordAuditEvent(db, event);
    });
  }
}
