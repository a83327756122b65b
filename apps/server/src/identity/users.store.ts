import type { TenantDb } from '../platform/database/tenant-scope.ts';

/** Users of one tenant. Every function runs inside that tenant's scope. */
export interface UserRecord {
  id: string;
  tenantId: string;
  email: string;
  passwordHash: string;
  /** Exactly one role (a database check holds it). */
  roles: string[];
}

export interface UserAccount extends UserRecord {
  status: 'active' | 'disabled';
  mfaSecretSealed: string | null;
  mfaConfirmed: boolean;
  mfaLastStep: number | null;
  failedSignIns: number;
  lockedUntil: Date | null;
  createdAt: Date;
}

interface UserRow {
  id: string;
  tenant_id: string;
  email: string;
  password_hash: string;
  roles: string[];
  status: 'active' | 'disabled';
  mfa_secret_sealed: string | null;
  mfa_confirmed_at: Date | null;
  mfa_last_step: string | null;
  failed_sign_ins: number;
  locked_until: Date | null;
  created_at: Date;
}

const userColumns = `id, tenant_id, email, password_hash, roles, status, mfa_secret_sealed, mfa_confirmed_at,
  mfa_last_step, failed_sign_ins, locked_until, created_at`;

function accountOf(row: UserRow): UserAccount {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    email: row.email,
    passwordHash: row.password_hash,
    roles: row.roles,
    status: row.status,
    mfaSecretSealed: row.mfa_secret_sealed,
    mfaConfirmed: row.mfa_confirmed_at !== null,
    mfaLastStep: row.mfa_last_step === null ? null : Number(row.mfa_last_step),
    failedSignIns: row.failed_sign_ins,
    lockedUntil: row.locked_until,
    createdAt: row.created_at,
  };
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

export async function findUserByEmail(db: TenantDb, email: string): Promise<UserAccount | null> {
  const { rows } = await db.query<UserRow>(`select ${userColumns} from users where email = $1`, [email]);
  return rows[0] ? accountOf(rows[0]) : null;
}

/** The user, locked for update when `forUpdate` (MFA replay protection, role changes). */
export async function findUserById(db: TenantDb, id: string, forUpdate = false): Promise<UserAccount | null> {
  const { rows } = await db.query<UserRow>(
    `select ${userColumns} from users where id = $1${forUpdate ? ' for update' : ''}`,
    [id],
  );
  return rows[0] ? accountOf(rows[0]) : null;
}

export async function listUsers(db: TenantDb, limit: number): Promise<UserAccount[]> {
  const { rows } = await db.query<UserRow>(`select ${userColumns} from users order by created_at, id limit $1`, [
    limit,
  ]);
  return rows.map(accountOf);
}

/** The entities a user is assigned to (staff, client), oldest assignment first. */
export async function assignedEntityIds(db: TenantDb, userId: string): Promise<string[]> {
  const { rows } = await db.query<{ entity_id: string }>(
    'select entity_id from user_entity_assignments where user_id = $1 order by created_at, entity_id',
    [userId],
  );
  return rows.map((row) => row.entity_id);
}

/** Replaces a user's assignments with the given entities. */
export async function replaceAssignments(db: TenantDb, userId: string, entityIds: readonly string[]): Promise<void> {
  await db.query('delete from user_entity_assignments where user_id = $1', [userId]);
  if (entityIds.length === 0) return;
  await db.query(
    `insert into user_entity_assignments (tenant_id, user_id, entity_id)
     select $1, $2, unnest($3::uuid[])`,
    [db.tenantId, userId, entityIds],
  );
}

/** How many of the given entities exist in the firm (and are visible to the scope). */
export async function countEntities(db: TenantDb, entityIds: readonly string[]): Promise<number> {
  const { rows } = await db.query<{ count: string }>('select count(*) from entities where id = any($1::uuid[])', [
    entityIds,
  ]);
  return Number(rows[0]?.count ?? 0);
}

export async function setRole(db: TenantDb, userId: string, role: string): Promise<void> {
  await db.query('update users set roles = $2, updated_at = now() where id = $1', [userId, [role]]);
}

export async function setStatus(db: TenantDb, userId: string, status: 'active' | 'disabled'): Promise<void> {
  await db.query('update users set status = $2, updated_at = now() where id = $1', [userId, status]);
}

export async function countActiveOwners(db: TenantDb): Promise<number> {
  const { rows } = await db.query<{ count: string }>(
    "select count(*) from users where status = 'active' and roles = array['owner']",
  );
  return Number(rows[0]?.count ?? 0);
}

/** Records a failed password; locks the account once `failuresMax` is reached. */
export async function recordFailedSignIn(
  db: TenantDb,
  userId: string,
  failuresMax: number,
  lockoutSeconds: number,
): Promise<{ locked: boolean }> {
  const { rows } = await db.query<{ locked: boolean }>(
    `update users set
       failed_sign_ins = case when failed_sign_ins + 1 >= $2 then 0 else failed_sign_ins + 1 end,
       locked_until = case when failed_sign_ins + 1 >= $2 then now() + make_interval(secs => $3) else locked_until end
     where id = $1
     returning locked_until is not null and locked_until > now() as locked`,
    [userId, failuresMax, lockoutSeconds],
  );
  return { locked: rows[0]?.locked ?? false };
}

export async function clearFailedSignIns(db: TenantDb, userId: string): Promise<void> {
  await db.query(
    'update users set failed_sign_ins = 0, locked_until = null where id = $1 and (failed_sign_ins > 0 or locked_until is not null)',
    [userId],
  );
}

export async function setPassword(db: TenantDb, userId: string, passwordHash: string): Promise<void> {
  await db.query('update users set password_hash = $2, updated_at = now() where id = $1', [userId, passwordHash]);
}
