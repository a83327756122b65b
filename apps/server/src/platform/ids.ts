import { uuidv7 } from 'uuidv7';

/**
 * Public ids are a type prefix plus a UUIDv7 without dashes (`ent_0193…`): time-sortable,
 * self-describing in logs, and stored as PostgreSQL `uuid`. Parsing checks the prefix, so an
 * entity id can never be mistaken for a tenant id and a malformed id never reaches SQL.
 */
export const idPrefixes = {
  tenant: 'ten',
  user: 'usr',
  entity: 'ent',
  job: 'job',
  account: 'acc',
  journalEntry: 'je',
  adjustment: 'adj',
  comment: 'cmt',
  closeTask: 'task',
  request: 'req',
  apiKey: 'key',
  invitation: 'inv',
  auditEvent: 'aud',
  operator: 'opr',
  tenantExport: 'exp',
  tierChange: 'tch',
} as const;

export type IdKind = keyof typeof idPrefixes;

const hexLength = 32;

export function newUuid(): string {
  return uuidv7();
}

export function formatId(kind: IdKind, uuid: string): string {
  return `${idPrefixes[kind]}_${uuid.replaceAll('-', '')}`;
}

/** Returns the uuid inside a public id, or null when the id is malformed or of another kind. */
export function parseId(kind: IdKind, id: string): string | null {
  const prefix = `${idPrefixes[kind]}_`;
  if (!id.startsWith(prefix)) return null;
  const hex = id.slice(prefix.length);
  if (hex.length !== hexLength || !/^[0-9a-f]+$/.test(hex)) return null;
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** JSON-schema pattern for a public id of one kind. */
export function idPattern(kind: IdKind): string {
  return `^${idPrefixes[kind]}_[0-9a-f]{${hexLength}}$`;
}
