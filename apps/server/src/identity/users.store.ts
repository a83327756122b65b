import type { TenantDb } from '../platform/database/tenant-scope.ts';

/** Users of one tenant. Every function runs inside that tenant's scope. */
export interface UserRecord {
  id: string;
  tenantId: string;
  email: string;
  passwordHash: string;
  roles: string[];
}

export async function insertUser(db: TenantDb, user: UserRecord): Promise<void> {
  await db.query('insert into users (tenant_id, id, email, password_hash, roles) values ($1, $2, $3, $4, $5)', [
    user.tenantId,
    user.id,
    user.email,
    user.passwordHash,
    user.roles,
  ]);
}

export async function findUserByEmail(db: TenantDb, email: string): Promise<UserRecord | null> {
  const { rows } = await db.query<{
    id: string;
    tenant_id: string;
    email: string;
    password_hash: string;
    roles: string[];
  }>('select id, tenant_id, email, password_hash, roles from users where email = $1', [email]);
  const row = rows[0];
  return row
    ? { id: row.id, tenantId: row.tenant_id, email: row.email, passwordHash: row.password_hash, roles: row.roles }
    : null;
}
