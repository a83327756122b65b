import type { TenantDb } from '../platform/database/tenant-scope.ts';

/** Refresh tokens of one tenant; every function runs in that tenant's scope. */
export interface RefreshTokenRow {
  id: string;
  familyId: string;
  userId: string;
  tokenHash: string;
  amr: string[];
  authTime: Date;
  expiresAt: Date;
  usedAt: Date | null;
  revokedAt: Date | null;
}

export async function insertRefreshToken(
  db: TenantDb,
  row: Pick<RefreshTokenRow, 'id' | 'familyId' | 'userId' | 'tokenHash' | 'amr' | 'authTime' | 'expiresAt'>,
): Promise<void> {
  await db.query(
    `insert into refresh_tokens (tenant_id, id, family_id, user_id, token_hash, amr, auth_time, expires_at)
     values ($1, $2, $3, $4, $5, $6, $7, $8)`,
    [db.tenantId, row.id, row.familyId, row.userId, row.tokenHash, row.amr, row.authTime, row.expiresAt],
  );
}

/** Locks the row, so two racing uses of one token see each other. */
export async function findRefreshTokenForUpdate(db: TenantDb, id: string): Promise<RefreshTokenRow | null> {
  const { rows } = await db.query<{
    id: string;
    family_id: string;
    user_id: string;
    token_hash: string;
    amr: string[];
    auth_time: Date;
    expires_at: Date;
    used_at: Date | null;
    revoked_at: Date | null;
  }>(
    `select id, family_id, user_id, token_hash, amr, auth_time, expires_at, used_at, revoked_at
     from refresh_tokens where id = $1 for update`,
    [id],
  );
  const row = rows[0];
  if (!row) return null;
  return {
    id: row.id,
    familyId: row.family_id,
    userId: row.user_id,
    tokenHash: row.token_hash,
    amr: row.amr,
    authTime: row.auth_time,
    expiresAt: row.expires_at,
    usedAt: row.used_at,
    revokedAt: row.revoked_at,
  };
}

export async function markRefreshTokenUsed(db: TenantDb, id: string): Promise<void> {
  await db.query('update refresh_tokens set used_at = now() where id = $1', [id]);
}

/** Revokes every token of a family (one sign-in session); returns how many were live. */
export async function revokeFamily(db: TenantDb, familyId: string): Promise<number> {
  const result = await db.query(
    'update refresh_tokens set revoked_at = now() where family_id = $1 and revoked_at is null',
    [familyId],
  );
  return result.rowCount ?? 0;
}

/** Revokes every session of a user (sign-out everywhere, role change, disable). */
export async function revokeUserSessions(db: TenantDb, userId: string): Promise<number> {
  const result = await db.query(
    'update refresh_tokens set revoked_at = now() where user_id = $1 and revoked_at is null',
    [userId],
  );
  return result.rowCount ?? 0;
}
