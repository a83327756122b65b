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

/** A stored event, as the chain hashes it. Digests and hashes are 32-byte buffers. */
export interface AuditEvent {
  tenantId: string;
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
export type AuditContent = Omit<AuditEvent, 'seq' | 'prevHash' | 'hash'>;

export interface AuditEventFilter {
  actorId?: string;
  action?: string;
  /** Matches every action starting with it, e.g. `journal.`. */
  actionPrefix?: string;
  entityId?: string;
  from?: Date;
  to?: Date;
}

export interface AuditEventPage {
  items: AuditEvent[];
  nextAfterSeq: bigint | null;
}

/** What is wrong with a link: its content does not match its hash, one is gone, or order changed. */
export type BrokenLinkProblem = 'altered' | 'missing' | 'reordered';

export interface BrokenLink {
  seq: bigint;
  /** The event at that link; null when the link itself is gone. */
  id: string | null;
  problem: BrokenLinkProblem;
  detail: string;
}

export interface ChainHead {
  seq: bigint;
  hash: Buffer;
}

export type AuditVerification =
  | { ok: true; eventsChecked: number; head: ChainHead | null }
  | { ok: false; eventsChecked: number; head: ChainHead | null; brokenLink: BrokenLink };
