import type pg from 'pg';
import type { Operator } from './operators.types.ts';

/** The operators table (migration 0009), owner role only. */

interface OperatorRow {
  id: string;
  name: string;
  key_prefix: string;
  key_digest: Buffer;
  created_by: string;
  created_at: Date;
  revoked_at: Date | null;
}

function operatorOf(row: OperatorRow): Operator {
  return {
    id: row.id,
    name: row.name,
    keyPrefix: row.key_prefix,
    createdBy: row.created_by,
    createdAt: row.created_at,
    revokedAt: row.revoked_at,
  };
}

export class PgOperatorsStore {
  readonly #pool: pg.Pool;

  constructor(ownerPool: pg.Pool) {
    this.#pool = ownerPool;
  }

  async insert(operator: Operator, keyDigest: Buffer): Promise<'name_taken' | 'ok'> {
    try {
      await this.#pool.query(
        `insert into operators (id, name, key_prefix, key_digest, created_by, created_at)
         values ($1, $2, $3, $4, $5, $6)`,
        [operator.id, operator.name, operator.keyPrefix, keyDigest, operator.createdBy, operator.createdAt],
      );
      return 'ok';
    } catch (error) {
      if ((error as { constraint?: string }).constraint === 'operators_name_key') return 'name_taken';
      throw error;
    }
  }

  async findByPrefix(keyPrefix: string): Promise<{ operator: Operator; keyDigest: Buffer } | null> {
    const { rows } = await this.#pool.query<OperatorRow>('select * from operators where key_prefix = $1', [keyPrefix]);
    const row = rows[0];
    return row ? { operator: operatorOf(row), keyDigest: row.key_digest } : null;
  }

  async list(): Promise<Operator[]> {
    const { rows } = await this.#pool.query<OperatorRow>('select * from operators order by created_at, id');
    return rows.map(operatorOf);
  }

  /** Revokes once; the first revocation time stays. Null when there is no such operator. */
  async revoke(id: string): Promise<Operator | null> {
    const { rows } = await this.#pool.query<OperatorRow>(
      'update operators set revoked_at = coalesce(revoked_at, now()) where id = $1 returning *',
      [id],
    );
    return rows[0] ? operatorOf(rows[0]) : null;
  }
}
