import { assert } from '../platform/assert.ts';
import type { RequestOrigin, TenantContext, TenantDb, TenantScopes } from '../platform/database/tenant-scope.ts';
import { newUuid } from '../platform/ids.ts';
import { auditLimits } from './audit.limits.ts';
import {
  type AuditDb,
  appendAuditEvents,
  findEventByHash,
  listAuditEvents,
  readChainHeads,
  readChainPage,
  readEventLanes,
} from './audit.store.ts';
import type {
  AuditContent,
  AuditEvent,
  AuditEventFilter,
  AuditEventInput,
  AuditEventPage,
  AuditPosition,
  AuditSummary,
  AuditVerification,
  BrokenLink,
  ChainHead,
} from './audit.types.ts';
import { advance, canonicalContent, checkHead, checkLink, digestOf, laneStart } from './audit-chain.ts';

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
 * so the event commits or rolls back with it. Call it last: appending locks one of the
 * tenant's chain lanes until the transaction ends.
 * The actor, request id and source address come from the scope's tenant context unless the
 * input names another origin. An owner-role transaction that names the tenant works too.
 */
export async function recordAuditEvent(
  db: AuditDb & { readonly origin?: RequestOrigin | null },
  input: AuditEventInput,
): Promise<{ id: string; lane: number; seq: bigint }> {
  const [recorded] = await recordAuditEvents(db, [input]);
  assert(recorded !== undefined, 'one event was recorded');
  return recorded;
}

/**
 * Records several events in order, as recordAuditEvent does one, in at most two round trips
 * (one to take a lane, one for the rest in that lane): a group of postings records one event
 * per post, each under its own origin.
 */
export async function recordAuditEvents(
  db: AuditDb & { readonly origin?: RequestOrigin | null },
  inputs: AuditEventInput[],
): Promise<{ id: string; lane: number; seq: bigint }[]> {
  const events = inputs.map((input): AuditContent => {
    assert(
      actionPattern.test(input.action) && input.action.length <= 100,
      `audit action ${input.action} is well formed`,
    );
    const origin = input.origin ?? db.origin ?? systemOrigin;
    return {
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
  });
  const linked = await appendAuditEvents(
    db,
    events.map((event) => ({ event, content: canonicalContent(event) })),
  );
  return events.map((event, index) => {
    const link = linked[index];
    assert(link !== undefined && link.seq > 0n, 'the audit append returned its seq');
    return { id: event.id, lane: link.lane, seq: link.seq };
  });
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
    after: AuditPosition | null,
    limit: number,
  ): Promise<AuditEventPage> {
    assert(limit >= 1 && limit <= auditLimits.exportPageSize, 'audit page size is bounded');
    const items = await this.#scopes.runOne(tenant, (db) => listAuditEvents(db, filter, after, limit + 1));
    const more = items.length > limit;
    const page = more ? items.slice(0, limit) : items;
    const last = page.at(-1);
    return { items: page, nextAfter: more && last ? { occurredAt: last.occurredAt, id: last.id } : null };
  }

  /** Every matching event, a page per scope, up to the export bound. */
  async *export(tenant: TenantContext, filter: AuditEventFilter): AsyncGenerator<AuditEvent[]> {
    let after: AuditPosition | null = null;
    let exported = 0;
    while (exported < auditLimits.exportRowsMax) {
      const limit = Math.min(auditLimits.exportPageSize, auditLimits.exportRowsMax - exported);
      const page = await this.list(tenant, filter, after, limit);
      if (page.items.length > 0) yield page.items;
      exported += page.items.length;
      if (page.nextAfter === null) return;
      after = page.nextAfter;
    }
  }

  /**
   * Walks each of the tenant's lanes from its first event to its head read at the start
   * (events appended meanwhile are left for the next run) and reports the first broken link.
   * A lane is walked when it has a head or holds events, so a removed head is found too.
   */
  async verify(tenant: TenantContext): Promise<AuditVerification> {
    const { heads, eventLanes } = await this.#scopes.run(tenant, async (db) => ({
      heads: await readChainHeads(db),
      eventLanes: await readEventLanes(db),
    }));
    const lanes = [...new Set([...heads.map((head) => head.lane), ...eventLanes])].sort((a, b) => a - b);
    let eventsChecked = 0;
    for (const lane of lanes) {
      const head = heads.find((candidate) => candidate.lane === lane) ?? null;
      const walked = await this.#verifyLane(tenant, lane, head, eventsChecked);
      eventsChecked = walked.eventsChecked;
      if (walked.broken !== null) return { ok: false, eventsChecked, heads, brokenLink: walked.broken };
    }
    return { ok: true, eventsChecked, heads };
  }

  async #verifyLane(
    tenant: TenantContext,
    lane: number,
    head: ChainHead | null,
    eventsCheckedBefore: number,
  ): Promise<{ broken: BrokenLink | null; eventsChecked: number }> {
    let cursor = laneStart(lane, eventsCheckedBefore);
    // Without a head, walk every event of the lane: checkHead then reports the head missing.
    const throughSeq = head?.seq ?? BigInt(Number.MAX_SAFE_INTEGER);
    for (;;) {
      const found = await this.#scopes.run(tenant, async (db: TenantDb) => {
        const events = await readChainPage(db, lane, cursor.expectedSeq - 1n, throughSeq, auditLimits.verifyPageSize);
        for (const event of events) {
          const broken = await checkLink(cursor, event, (hash) => findEventByHash(db, hash));
          if (broken !== null) return { broken, done: true };
          cursor = advance(cursor, event);
        }
        return { broken: null, done: events.length < auditLimits.verifyPageSize };
      });
      if (found.broken !== null) return { broken: found.broken, eventsChecked: cursor.eventsChecked };
      if (found.done) break;
    }
    return { broken: checkHead(cursor, head), eventsChecked: cursor.eventsChecked };
  }
}
