import type pg from 'pg';
import {
  allEntities,
  type RequestOrigin,
  type TenantContext,
  TenantScopes,
} from '../platform/database/tenant-scope.ts';
import { sharedPoolPlacement } from '../tenancy/tiers.ts';
import { AuditService, recordAuditEvent } from './audit.service.ts';
import type {
  AuditEventFilter,
  AuditEventInput,
  AuditEventPage,
  AuditPosition,
  AuditVerification,
} from './audit.types.ts';

/**
 * The platform's own audit log: operator actions on the platform as a whole, not on one firm
 * (a signing-key rotation signs every firm's tokens). A firm's log is no place for them, and
 * copying them into every firm's log would make one action thousands of writes. The log is a
 * chain like a firm's, in `audit_events` of the control database under a reserved id no
 * tenant has (the nil uuid: tenant ids are UUIDv7), so it is appended, listed and verified by
 * the same code. No tenant scope can name it: it is reached with owner connections only, and
 * the audit store names the id in every statement.
 */
export const platformAuditId = '00000000-0000-0000-0000-000000000000';

export class PlatformAudit {
  readonly #scopes: TenantScopes;
  readonly #audit: AuditService;
  readonly #context: TenantContext = {
    tenantId: platformAuditId,
    tier: 'platform',
    placement: sharedPoolPlacement,
    entityScope: allEntities,
  };

  constructor(ownerPool: pg.Pool) {
    // No scope gate: the platform's log is under no tenant's bulkhead or statement timeout.
    this.#scopes = new TenantScopes({ poolFor: () => ownerPool });
    this.#audit = new AuditService(this.#scopes);
  }

  /**
   * Makes the change, then appends its event (as OperatorAudit does for a firm: a change that
   * fails records nothing). Errors: whatever `change` throws.
   */
  async record<T>(
    origin: RequestOrigin,
    change: () => Promise<T>,
    eventOf: (result: T) => AuditEventInput,
  ): Promise<T> {
    const result = await change();
    await this.#scopes.run({ ...this.#context, origin }, (db) => recordAuditEvent(db, eventOf(result)));
    return result;
  }

  async list(filter: AuditEventFilter, after: AuditPosition | null, limit: number): Promise<AuditEventPage> {
    return await this.#audit.list(this.#context, filter, after, limit);
  }

  async verify(): Promise<AuditVerification> {
    return await this.#audit.verify(this.#context);
  }
}
