import type { Logger } from 'pino';
import type { TenantDb } from '../platform/database/tenant-scope.ts';

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
 * the change it describes. The audit domain provides the durable, hash-chained sink; the
 * log sink is the fallback until it is wired.
 */
export interface AuthEventSink {
  record(db: TenantDb, event: AuthEvent): Promise<void>;
}

export function logAuthEvents(log: Logger): AuthEventSink {
  return {
    async record(db, event) {
      log.info({ tenantId: db.tenantId, ...event }, 'auth event');
    },
  };
}
