import { adminPassword, type TestStack, type TestTenant } from '../../test/harness.ts';
import { newUuid, parseId } from '../platform/ids.ts';
import { tenantContextOf } from '../tenancy/tenancy.service.ts';
import type { Role } from './access.ts';
import { hashPassword } from './passwords.ts';
import { insertUser, replaceAssignments } from './users.store.ts';

/** A member of a test firm, signed in through the real sign-in route. */
export interface TestMember {
  userId: string;
  email: string;
  role: Role;
  token: string;
  refreshToken: string | null;
  auth: { authorization: string };
}

let sharedHash: Promise<string> | null = null;

function tenantUuid(publicId: string): string {
  const uuid = parseId('tenant', publicId);
  if (uuid === null) throw new Error(`not a tenant id: ${publicId}`);
  return uuid;
}

/** Inserts a user with the role and entity assignments (public ids) and signs them in. */
export async function addMember(
  stack: TestStack,
  tenant: TestTenant,
  role: Role,
  entityIds: string[] = [],
): Promise<TestMember> {
  const tenantId = tenantUuid(tenant.id);
  const record = await stack.platform.tenancy.getTenant(tenantId);
  if (record === null) throw new Error('tenant not in the registry');
  sharedHash ??= hashPassword(adminPassword);
  const passwordHash = await sharedHash;
  const userId = newUuid();
  const email = `${role}-${userId}@example.test`;
  await stack.platform.scopes.run(tenantContextOf(record), async (db) => {
    await insertUser(db, { id: userId, tenantId, email, passwordHash, roles: [role] });
    await replaceAssignments(
      db,
      userId,
      entityIds.map((id) => parseId('entity', id) ?? ''),
    );
  });
  return { userId, email, role, ...(await signInMember(stack, tenant, email)) };
}

export async function signInMember(stack: TestStack, tenant: TestTenant, email: string, password = adminPassword) {
  const response = await stack.app.inject({
    method: 'POST',
    url: '/v1/auth/token',
    payload: { tenantId: tenant.id, email, password },
  });
  if (response.statusCode !== 200) throw new Error(`sign-in failed: ${response.body}`);
  const body = response.json<{ access_token: string; refresh_token?: string }>();
  return {
    token: body.access_token,
    refreshToken: body.refresh_token ?? null,
    auth: { authorization: `Bearer ${body.access_token}` },
  };
}

export async function createEntity(stack: TestStack, tenant: TestTenant, name: string): Promise<string> {
  const response = await stack.app.inject({
    method: 'POST',
    url: '/v1/entities',
    headers: { ...tenant.auth, 'idempotency-key': newUuid() },
    payload: { name },
  });
  if (response.statusCode !== 201) throw new Error(`entity creation failed: ${response.body}`);
  return response.json<{ id: string }>().id;
}

/**
 * Gives a firm a row in every identity table (assignment, invitation, recovery code, API key;
 * sign-in already wrote a refresh token), for the isolation canary.
 */
export async function seedIdentityCanary(stack: TestStack, tenant: TestTenant): Promise<void> {
  const entityId = parseId('entity', await createEntity(stack, tenant, `Identity canary ${newUuid()}`));
  const staff = await addMember(stack, tenant, 'staff', []);
  const record = await stack.platform.tenancy.getTenant(tenantUuid(tenant.id));
  if (record === null || entityId === null) throw new Error('canary tenant or entity missing');
  await stack.platform.scopes.run(tenantContextOf(record), async (db) => {
    await replaceAssignments(db, staff.userId, [entityId]);
    await db.query(
      `insert into invitations (tenant_id, id, email, role, token_hash, invited_by, expires_at)
       values ($1, $2, $3, 'auditor', 'canary', $4, now() + interval '1 day')`,
      [db.tenantId, newUuid(), `invitee-${newUuid()}@example.test`, staff.userId],
    );
    await db.query(`insert into mfa_recovery_codes (tenant_id, user_id, code_hash) values ($1, $2, 'canary')`, [
      db.tenantId,
      staff.userId,
    ]);
    await db.query(
      `insert into api_keys (tenant_id, id, name, scope, secret_hash, created_by) values ($1, $2, 'canary', 'read', 'canary', $3)`,
      [db.tenantId, newUuid(), staff.userId],
    );
  });
}
