import { assert } from '../platform/assert.ts';
import type { RequestOrigin, TenantContext, TenantDb, TenantScopes } from '../platform/database/tenant-scope.ts';
import { newUuid } from '../platform/ids.ts';
import { auditLimits } from './audit.limits.ts';
import {
  type AuditDb,
  appendAuditEvent,
  findSeqByHash,
  listAuditEvents,
  readChainHead,
  readChainPage,
} from './audit.store.ts';
import type {
  AuditContent,
  AuditEvent,
  AuditEventFilter,
  AuditEventInput,
  AuditEventPage,
  AuditSummary,
  AuditVerification,
} from './audit.types.ts';
import { advance, canonicalContent, chainStart, checkHead, checkLink, digestOf } from './audit-chain.ts';

/** Changes made by the platform itself (workers, migrations of data) name the system. */
export const systemOrigin: RequestOrigin = {
  actor: { kind: 'system', id: 'system' },
  requestId: null,
  sourceAddress: null,
};

const actionPattern = /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$/;
const requestIdLengthMax = 200;
const sourceAddressLengthMax = 100;

function checkedSummary(summary: AuditSummary | undefined): AuditSummary | null {
  if (summary === undefined) return null;
  const entries = Object.entries(summary);
  assert(entries.length <= auditLimits.summaryKeysMax, 'an audit summary has few keys');
  for (const [key, value] of entries) {
    assert(typeof value !== 'number' || Number.isSafeInteger(value), `audit summary ${key} is a safe integer`);
  }
  assert(JSON.stringify(summary).length <= auditLimits.summaryLengthMax, 'an audit summary is small');
  return summary;
}

/**
 * Records one audit event inside an open tenant transaction, as the last step of a change,
 * so the event commits or rolls back with it. Call it last: appending locks the tenant's
 * chain head until the transaction ends, which orders concurrent appends of one tenant.
 * The actor, request id and source address come from the scope's tenant context unless the
 * input names another origin. An owner-role transaction that names the tenant works too.
 */
export async function recordAuditEvent(
  db: AuditDb & { readonly origin?: RequestOrigin | null },
  input: AuditEventInput,
): Promise<{ id: string; seq: bigint }> {
  assert(actionPattern.test(input.action) && input.action.length <= 100, `audit action ${input.action} is well formed`);
  const origin = input.origin ?? db.origin ?? systemOrigin;
  const event: AuditContent = {
    tenantId: db.tenantId,
    id: newUuid(),
    occurredAt: new Date(),
    actor: origin.actor,
    action: input.action,
    entityId: input.entityId ?? null,
    resourceType: input.resource?.type ?? null,
    resourceId: input.resource?.id ?? null,
    requestId: origin.requestId?.slice(0, requestIdLengthMax) ?? null,
    sourceAddress: origin.sourceAddress?.slice(0, sourceAddressLengthMax) ?? null,
    beforeDigest: digestOf(input.before),
    afterDigest: digestOf(input.after),
    summary: checkedSummary(input.summary),
  };
  const seq = await appendAuditEvent(db, event, canonicalContent(event));
  assert(seq > 0n, 'the audit append returned its seq');
  return { id: event.id, seq };
}

/** The names of the fields a change sets, for an event summary: `legalName,name`. */
export function changedFields(changes: object): string {
  return Object.entries(changes)
    .filter(([, value]) => value !== undefined)
    .map(([key]) => key)
    .sort()
    .join(',');
}

/** Reading and verifying a tenant's audit log. */
export class AuditService {
  readonly #scopes: TenantScopes;

  constructor(scopes: TenantScopes) {
    this.#scopes = scopes;
  }

  async list(
    tenant: TenantContext,
    filter: AuditEventFilter,
    afterSeq: bigint,
    limit: number,
  ): Promise<AuditEventPage> {
    assert(limit >= 1 && limit <= auditLimits.exportPageSize, 'audit page size is bounded');
    const items = await this.#scopes.run(tenant, (db) => listAuditEvents(db, filter, afterSeq, limit + 1));
    const more = items.length > limit;
    const page = more ? items.slice(0, limit) : items;
    return { items: page, nextAfterSeq: more ? (page.at(-1)?.seq ?? null) : null };
  }

  /** Every matching event, a page per scope, up to the export bound. */
  async *export(tenant: TenantContext, filter: AuditEventFilter): AsyncGenerator<AuditEvent[]> {
    let afterSeq = 0n;
    let exported = 0;
    while (exported < auditLimits.exportRowsMax) {
      const limit = Math.min(auditLimits.exportPageSize, auditLimits.exportRowsMax - exported);
      const page = await this.list(tenant, filter, afterSeq, limit);
      if (page.items.length > 0) yield page.items;
      exported += page.items.length;
      if (page.nextAfterSeq === null) return;
      afterSeq = page.nextAfterSeq;
    }
  }

  /**
   * Walks the tenant's chain from the first event to the head read at the start (events
   * appended meanwhile are left for the next run) and reports the first broken link.
   */
  async verify(tenant: TenantContext): Promise<AuditVerification> {
    const head = await this.#scopes.run(tenant, (db) => readChainHead(db));
    let cursor = chainStart;
    const throughSeq = head?.seq ?? 0n;
    for (;;) {
      const found = await this.#scopes.run(tenant, async (db: TenantDb) => {
        const events = await readChainPage(db, cursor.expectedSeq - 1n, throughSeq, auditLimits.verifyPageSize);
        for (const event of events) {
          const broken = await checkLink(cursor, event, (hash) => findSeqByHash(db, hash));
          if (broken !== null) return { broken, done: true };
          cursor = advance(cursor, event);
        }
        return { broken: null, done: events.length < auditLimits.verifyPageSize };
      });
      if (found.broken !== null) {
        return { ok: false, eventsChecked: cursor.eventsChecked, head, brokenLink: found.broken };
      }
      if (found.done) break;
    }
    const broken = checkHead(cursor, head);
    if (broken !== null) return { ok: false, eventsChecked: cursor.eventsChecked, head, brokenLink: broken };
    return { ok: true, eventsChecked: cursor.eventsChecked, head };
  }
}
