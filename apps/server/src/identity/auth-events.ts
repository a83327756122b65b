import type { Logger } from 'pino';
import { recordAuditEvent } from '../audit/audit.service.ts';
import type { TenantDb } from '../platform/database/tenant-scope.ts';
import { formatId } from '../platform/ids.ts';

/** Where a request came from, for the audit trail. */
export interface AuthOrigin {
  requestId: string | null;
  sourceAddress: string | null;
}

/** One authentication or access-administration event (audited per tenant). */
export interface AuthEvent {
  /** Dotted, lower case: `auth.sign_in.failed`, `identity.api_key.created`. */
  action: string;
  /** The user acting (or attempting), when known. */
  actorUserId: string | null;
  /** The user or key acted on, when it is not the actor. */
  resource?: { type: string; id: string };
  summary?: Record<string, string | number | boolean | null>;
  origin: AuthOrigin;
}

/**
 * Records authentication events inside the tenant's transaction, so an event commits with
 * the change it describes: the tenant's hash-chained audit log, and a log line.
 */
export interface AuthEventSink {
  record(db: TenantDb, event: AuthEvent): Promise<void>;
}

export function auditAuthEvents(log: Logger): AuthEventSink {
  return {
    async record(db, event) {
      log.info({ tenantId: db.tenantId, action: event.action, actorUserId: event.actorUserId }, 'auth event');
      const actor =
        event.actorUserId === null
          ? { kind: 'anonymous' as const, id: 'anonymous' }
          : { kind: 'user' as const, id: formatId('user', event.actorUserId) };
      await recordAuditEvent(db, {
        action: event.action,
        ...(event.resource ? { resource: event.resource } : {}),
        ...(event.summary ? { summary: event.summary } : {}),
        origin: { actor, requestId: event.origin.requestId, sourceAddress: event.origin.sourceAddress },
      });
    },
  };
}
