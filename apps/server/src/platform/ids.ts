import { randomFillSync } from 'node:crypto';
import { V7Generator } from 'uuidv7';

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

/**
 * The random bits of new ids, drawn from the CSPRNG 4 KiB at a time. The library's default
 * source draws 32 bytes a call, a system call every three ids or so; an id on every request
 * (the request id, even of a refused one) made that a few percent of a flood's cost.
 */
class BufferedRandom {
  readonly #buffer = new Uint32Array(1024);
  #next = this.#buffer.length;

  nextUint32(): number {
    if (this.#next === this.#buffer.length) {
      randomFillSync(this.#buffer);
      this.#next = 0;
    }
    return this.#buffer[this.#next++] as number;
  }
}

const generator = new V7Generator(new BufferedRandom());

export function newUuid(): string {
  return generator.generate().toString();
}

/** A new public id of one kind, as formatId(kind, newUuid()) gives. */
export function newPublicId(kind: IdKind): string {
  return `${idPrefixes[kind]}_${generator.generate().toHex()}`;
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
