import { createHash } from 'node:crypto';
import { AppError } from '../errors.ts';
import type { TenantDb } from './tenant-scope.ts';

/**
 * Idempotent POSTs inside a tenant scope. The key's record is written in the same
 * transaction as the work, so either both commit or neither does; a transaction-level
 * advisory lock on the key makes a concurrent retry wait for the first call and then
 * replay its response instead of doing the work twice.
 */
export interface IdempotentResult<Body> {
  status: number;
  body: Body;
  replayed: boolean;
}

export const idempotencyKeyPattern = /^[\x21-\x7e]{1,255}$/;

export function requestHash(route: string, body: unknown): string {
  return createHash('sha256')
    .update(route)
    .update('\n')
    .update(JSON.stringify(body ?? null))
    .digest('hex');
}

export async function runIdempotent<Body>(
  db: TenantDb,
  key: string | undefined,
  route: string,
  body: unknown,
  work: () => Promise<{ status: number; body: Body }>,
): Promise<IdempotentResult<Body>> {
  if (key === undefined) return { ...(await work()), replayed: false };
  if (!idempotencyKeyPattern.test(key)) throw new AppError('IDEMPOTENCY_KEY_INVALID');
  const hash = requestHash(route, body);
  await db.query('select pg_advisory_xact_lock(hashtextextended($1, 0))', [`${db.tenantId}:${key}`]);
  const { rows } = await db.query<{ request_hash: string; response_status: number; response_body: Body }>(
    'select request_hash, response_status, response_body from idempotency_keys where key = $1',
    [key],
  );
  const previous = rows[0];
  if (previous) {
    if (previous.request_hash !== hash) throw new AppError('IDEMPOTENCY_KEY_REUSED');
    return { status: previous.response_status, body: previous.response_body, replayed: true };
  }
  const result = await work();
  await db.query(
    `insert into idempotency_keys (tenant_id, key, route, request_hash, response_status, response_body)
     values ($1, $2, $3, $4, $5, $6)`,
    [db.tenantId, key, route, hash, result.status, JSON.stringify(result.body)],
  );
  return { ...result, replayed: false };
}
