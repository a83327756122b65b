import type { AuditActor, RequestOrigin } from '../platform/database/tenant-scope.ts';

export type { AuditActor, RequestOrigin };

/** A flat, small JSON object: what a reader of the log needs to see at a glance. */
export type AuditSummary = Readonly<Record<string, string | number | boolean | null>>;

/**
 * One change to record. `before` and `after` are stored only as SHA-256 digests of their
 * canonical JSON, so the log proves what a record looked like without holding its data.
 */
export interface AuditEventInput {
  /** `<resource>.<verb>`, lower case: `entity.create`, `journal.post`, `auth.sign_in`. */
  action: string;
  /** The client entity the change belongs to (uuid), if any. */
  entityId?: string | null;
  resource?: { type: string; id: string } | null;
  before?: unknown;
  after?: unknown;
  summary?: AuditSummary;
  /** Overrides the scope's origin, e.g. a sign-in attempt before anyone is authenticated. */
  origin?: RequestOrigin;
}

/**
 * A stored event, as the chain hashes it. Digests and hashes are 32-byte buffers. `lane` and
 * `seq` place it in one of the tenant's chains (migration 0014); neither is hashed, the link
 * to the previous event of the lane is.
 */
export interface AuditEvent {
  tenantId: string;
  lane: number;
  seq: bigint;
  id: string;
  occurredAt: Date;
  actor: AuditActor;
  action: string;
  entityId: string | null;
  resourceType: string | null;
  resourceId: string | null;
  requestId: string | null;
  sourceAddress: string | null;
  beforeDigest: Buffer | null;
  afterDigest: Buffer | null;
  summary: AuditSummary | null;
  prevHash: Buffer;
  hash: Buffer;
}

/** The chain's fields before it is linked: everything but seq and the hashes. */
export type AuditContent = Omit<AuditEvent, 'lane' | 'seq' | 'prevHash' | 'hash'>;

export interface AuditEventFilter {
  actorId?: string;
  action?: string;
  /** Matches every action starting with it, e.g. `journal.`. */
  actionPrefix?: string;
  entityId?: string;
  from?: Date;
  to?: Date;
}

/** Where a listing stands: events are listed in (occurredAt, id) order. */
export interface AuditPosition {
  occurredAt: Date;
  id: string;
}

export interface AuditEventPage {
  items: AuditEvent[];
  nextAfter: AuditPosition | null;
}

/** What is wrong with a link: its content does not match its hash, one is gone, or order changed. */
export type BrokenLinkProblem = 'altered' | 'missing' | 'reordered';

export interface BrokenLink {
  lane: number;
  seq: bigint;
  /** The event at that link; null when the link itself is gone. */
  id: string | null;
  problem: BrokenLinkProblem;
  detail: string;
}

export interface ChainHead {
  lane: number;
  seq: bigint;
  hash: Buffer;
}

/** `heads` are the lanes' heads read when the walk started, in lane order. */
export type AuditVerification =
  | { ok: true; eventsChecked: number; heads: ChainHead[] }
  | { ok: false; eventsChecked: number; heads: ChainHead[]; brokenLink: BrokenLink };
