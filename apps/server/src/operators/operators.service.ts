import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import type { AuditActor } from '../platform/database/tenant-scope.ts';
import { AppError } from '../platform/errors.ts';
import { formatId, newUuid } from '../platform/ids.ts';
import { randomToken } from '../platform/local-secrets.ts';
import type { OperatorKey } from '../tenancy/operator-key.ts';
import type { PgOperatorsStore } from './operators.store.ts';
import type { Operator } from './operators.types.ts';

/**
 * Named operators beside the bootstrap operator. A named operator's key is
 * `chopk_<prefix>_<secret>`: the prefix (12 hex digits) finds the row, the SHA-256 digest of
 * the whole key is compared in constant time. Keys are 32 random bytes, so a fast digest is
 * enough (nothing to stretch). The bootstrap key (`COUNTINGHOUSE_OPERATOR_KEY`) creates and
 * revokes operators; every operator's actions on a tenant are audited under its own id.
 */
const namedKeyPattern = /^chopk_([0-9a-f]{12})_[A-Za-z0-9_-]{43}$/;

export const bootstrapOperator: AuditActor = { kind: 'operator', id: 'bootstrap' };

function digestOf(key: string): Buffer {
  return createHash('sha256').update(key).digest();
}

export class OperatorsService {
  readonly #store: PgOperatorsStore;
  readonly #bootstrapKey: OperatorKey;
  readonly #log: Logger;

  constructor(store: PgOperatorsStore, bootstrapKey: OperatorKey, log: Logger) {
    this.#store = store;
    this.#bootstrapKey = bootstrapKey;
    this.#log = log;
  }

  /** The operator a bearer key belongs to, or null (unknown, wrong or revoked). */
  async authenticate(key: string): Promise<AuditActor | null> {
    if (this.#bootstrapKey.matches(key)) return bootstrapOperator;
    const prefix = namedKeyPattern.exec(key)?.[1];
    if (prefix === undefined) return null;
    const found = await this.#store.findByPrefix(prefix);
    if (found === null || found.operator.revokedAt !== null) return null;
    if (!timingSafeEqual(found.keyDigest, digestOf(key))) return null;
    return { kind: 'operator', id: formatId('operator', found.operator.id) };
  }

  /**
   * Creates a named operator and returns its key, shown this once.
   * Errors: OPERATOR_BOOTSTRAP_ONLY, OPERATOR_NAME_TAKEN.
   */
  async create(name: string, by: AuditActor): Promise<{ operator: Operator; key: string }> {
    if (by.id !== bootstrapOperator.id) throw new AppError('OPERATOR_BOOTSTRAP_ONLY');
    const keyPrefix = randomBytes(6).toString('hex');
    const key = `chopk_${keyPrefix}_${randomToken(32)}`;
    const operator: Operator = {
      id: newUuid(),
      name: name.trim(),
      keyPrefix,
      createdBy: by.id,
      createdAt: new Date(),
      revokedAt: null,
    };
    if ((await this.#store.insert(operator, digestOf(key))) === 'name_taken') {
      throw new AppError('OPERATOR_NAME_TAKEN', `An operator named "${operator.name}" already exists.`);
    }
    this.#log.info(
      { operatorId: formatId('operator', operator.id), name: operator.name, by: by.id },
      'operator created',
    );
    return { operator, key };
  }

  async list(): Promise<Operator[]> {
    return await this.#store.list();
  }

  /** Errors: OPERATOR_BOOTSTRAP_ONLY, OPERATOR_NOT_FOUND. */
  async revoke(id: string, by: AuditActor): Promise<Operator> {
    if (by.id !== bootstrapOperator.id) throw new AppError('OPERATOR_BOOTSTRAP_ONLY');
    const operator = await this.#store.revoke(id);
    if (operator === null) throw new AppError('OPERATOR_NOT_FOUND');
    this.#log.info({ operatorId: formatId('operator', id), by: by.id }, 'operator revoked');
    return operator;
  }
}
