import type { TenantContext, TenantDb, TenantScopes } from '../platform/database/tenant-scope.ts';
import { AppError } from '../platform/errors.ts';
import { newUuid } from '../platform/ids.ts';
import { entityScopedRoles, isRole, type Role, roleGrants } from './access.ts';
import type { AuthEventSink, AuthOrigin } from './auth-events.ts';
import { identityLimits } from './identity.limits.ts';
import { hashPassword, type PasswordPolicy } from './passwords.ts';
import { newSecretToken, parseSecretToken, secretMatches } from './secret-tokens.ts';
import { revokeUserSessions } from './sessions.store.ts';
import {
  assignedEntityIds,
  countActiveOwners,
  countEntities,
  findUserByEmail,
  findUserById,
  insertUser,
  listUsers,
  replaceAssignments,
  setRole,
  setStatus,
  type UserAccount,
} from './users.store.ts';

export interface Member {
  user: UserAccount;
  entityIds: string[];
}

export interface IssuedInvitation {
  id: string;
  email: string;
  role: Role;
  token: string;
  expiresAt: Date;
}

type Outcome<T> = { ok: true; value: T } | { ok: false; error: AppError };

/**
 * People in a firm: invitations (single use, expiring), their acceptance with a password,
 * roles (who may grant which: roleGrants) and entity assignments. A role change, a new
 * assignment or a disable revokes the user's sessions, so it applies at the next sign-in
 * and within one access-token lifetime (15 minutes) at most.
 */
export class UsersService {
  readonly #scopes: TenantScopes;
  readonly #passwords: PasswordPolicy;
  readonly #events: AuthEventSink;

  constructor(scopes: TenantScopes, passwords: PasswordPolicy, events: AuthEventSink) {
    this.#scopes = scopes;
    this.#passwords = passwords;
    this.#events = events;
  }

  async list(context: TenantContext): Promise<Member[]> {
    return await this.#scopes.run(context, async (db) => {
      const users = await listUsers(db, identityLimits.usersListedMax);
      const members: Member[] = [];
      for (const user of users) members.push({ user, entityIds: await assignedEntityIds(db, user.id) });
      return members;
    });
  }

  /**
   * Invites a person by email with a role (and entities for staff and client). The link is
   * returned to the inviter; there is no mail transport.
   * Errors: IDENTITY_ROLE_NOT_GRANTABLE, IDENTITY_ASSIGNMENT_INVALID, IDENTITY_EMAIL_TAKEN.
   */
  async invite(
    context: TenantContext,
    inviter: { userId: string; role: Role },
    input: { email: string; role: Role; entityIds: string[] },
    origin: AuthOrigin,
  ): Promise<IssuedInvitation> {
    checkGrant(inviter.role, input.role);
    checkAssignmentShape(input.role, input.entityIds);
    const email = input.email.trim().toLowerCase();
    return await this.#scopes.run(context, async (db) => {
      await checkEntitiesExist(db, input.entityIds);
      if (await findUserByEmail(db, email)) throw new AppError('IDENTITY_EMAIL_TAKEN');
      const id = newUuid();
      const { token, hash } = newSecretToken('invitation', db.tenantId, id);
      const expiresAt = new Date(Date.now() + identityLimits.invitationTtlSeconds * 1000);
      await db.query(
        `insert into invitations (tenant_id, id, email, role, entity_ids, token_hash, invited_by, expires_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8)`,
        [db.tenantId, id, email, input.role, input.entityIds, hash, inviter.userId, expiresAt],
      );
      await this.#events.record(db, {
        action: 'identity.invitation.created',
        actorUserId: inviter.userId,
        resource: { type: 'invitation', id },
        summary: { email, role: input.role },
        origin,
      });
      return { id, email, role: input.role, token, expiresAt };
    });
  }

  /**
   * Accepts an invitation: checks the password rules, creates the user with the invited role
   * and entities, and spends the invitation. Every unusable invitation (unknown, expired,
   * revoked, used, wrong secret) is the same IDENTITY_INVITATION_INVALID.
   * Errors: IDENTITY_INVITATION_INVALID, IDENTITY_PASSWORD_TOO_SHORT, IDENTITY_PASSWORD_BREACHED, IDENTITY_EMAIL_TAKEN.
   */
  async accept(
    tenantOf: (tenantId: string) => Promise<TenantContext | null>,
    token: string,
    password: string,
    origin: AuthOrigin,
  ): Promise<{ tenantId: string; userId: string; email: string }> {
    const parsed = parseSecretToken('invitation', token);
    const context = parsed ? await tenantOf(parsed.tenantId) : null;
    if (!parsed || !context) throw new AppError('IDENTITY_INVITATION_INVALID');
    this.#passwords.check(password);
    const passwordHash = await hashPassword(password);
    return await this.#scopes.run(context, async (db) => {
      const { rows } = await db.query<{
        email: string;
        role: string;
        entity_ids: string[];
        token_hash: string;
        usable: boolean;
      }>(
        `select email, role, entity_ids, token_hash,
                accepted_at is null and revoked_at is null and expires_at > now() as usable
         from invitations where id = $1 for update`,
        [parsed.id],
      );
      const invitation = rows[0];
      if (!invitation?.usable || !secretMatches(parsed.secret, invitation.token_hash)) {
        throw new AppError('IDENTITY_INVITATION_INVALID');
      }
      if (await findUserByEmail(db, invitation.email)) throw new AppError('IDENTITY_EMAIL_TAKEN');
      const userId = newUuid();
      await insertUser(db, {
        id: userId,
        tenantId: db.tenantId,
        email: invitation.email,
        passwordHash,
        roles: [invitation.role],
      });
      await replaceAssignments(db, userId, invitation.entity_ids);
      await db.query('update invitations set accepted_at = now(), accepted_user_id = $2 where id = $1', [
        parsed.id,
        userId,
      ]);
      await this.#events.record(db, {
        action: 'identity.invitation.accepted',
        actorUserId: userId,
        resource: { type: 'invitation', id: parsed.id },
        summary: { email: invitation.email, role: invitation.role },
        origin,
      });
      return { tenantId: db.tenantId, userId, email: invitation.email };
    });
  }

  /**
   * Changes a user's role, and with it their assignments when the new role is entity-scoped.
   * Errors: IDENTITY_USER_NOT_FOUND, IDENTITY_ROLE_NOT_GRANTABLE, IDENTITY_ASSIGNMENT_INVALID, IDENTITY_LAST_OWNER.
   */
  async changeRole(
    context: TenantContext,
    actor: { userId: string; role: Role },
    userId: string,
    input: { role: Role; entityIds?: string[] | undefined },
    origin: AuthOrigin,
  ): Promise<Member> {
    checkGrant(actor.role, input.role);
    return await this.#mutateUser(context, userId, async (db, user) => {
      const before = roleOfUser(user);
      // Only an owner may change an owner's role.
      checkGrant(actor.role, before);
      const entityIds = entityScopedRoles.includes(input.role)
        ? (input.entityIds ?? (await assignedEntityIds(db, userId)))
        : [];
      checkAssignmentShape(input.role, entityIds);
      await checkEntitiesExist(db, entityIds);
      await setRole(db, userId, input.role);
      if (before === 'owner' && input.role !== 'owner' && (await countActiveOwners(db)) === 0) {
        throw new AppError('IDENTITY_LAST_OWNER');
      }
      await replaceAssignments(db, userId, entityIds);
      await revokeUserSessions(db, userId);
      await this.#events.record(db, {
        action: 'identity.user.role_changed',
        actorUserId: actor.userId,
        resource: { type: 'user', id: userId },
        summary: { from: before, to: input.role, entities: entityIds.length },
        origin,
      });
      return { user: { ...user, roles: [input.role] }, entityIds };
    });
  }

  /** Sets the entities of a staff or client user. Errors: IDENTITY_USER_NOT_FOUND, IDENTITY_ASSIGNMENT_INVALID. */
  async assign(
    context: TenantContext,
    actor: { userId: string },
    userId: string,
    entityIds: string[],
    origin: AuthOrigin,
  ): Promise<Member> {
    return await this.#mutateUser(context, userId, async (db, user) => {
      const role = roleOfUser(user);
      checkAssignmentShape(role, entityIds);
      await checkEntitiesExist(db, entityIds);
      await replaceAssignments(db, userId, entityIds);
      await revokeUserSessions(db, userId);
      await this.#events.record(db, {
        action: 'identity.user.assignments_changed',
        actorUserId: actor.userId,
        resource: { type: 'user', id: userId },
        summary: { entities: entityIds.length },
        origin,
      });
      return { user, entityIds };
    });
  }

  /** Disables a user and ends their sessions. Errors: IDENTITY_USER_NOT_FOUND, IDENTITY_ROLE_NOT_GRANTABLE, IDENTITY_LAST_OWNER. */
  async disable(context: TenantContext, actor: { userId: string; role: Role }, userId: string, origin: AuthOrigin) {
    return await this.#mutateUser(context, userId, async (db, user) => {
      checkGrant(actor.role, roleOfUser(user));
      await setStatus(db, userId, 'disabled');
      if (roleOfUser(user) === 'owner' && (await countActiveOwners(db)) === 0)
        throw new AppError('IDENTITY_LAST_OWNER');
      await revokeUserSessions(db, userId);
      await this.#events.record(db, {
        action: 'identity.user.disabled',
        actorUserId: actor.userId,
        resource: { type: 'user', id: userId },
        origin,
      });
      return { user: { ...user, status: 'disabled' as const }, entityIds: await assignedEntityIds(db, userId) };
    });
  }

  async #mutateUser<T>(context: TenantContext, userId: string, work: (db: TenantDb, user: UserAccount) => Promise<T>) {
    const outcome = await this.#scopes.run(context, async (db): Promise<Outcome<T>> => {
      const user = await findUserById(db, userId, true);
      if (!user) return { ok: false, error: new AppError('IDENTITY_USER_NOT_FOUND') };
      return { ok: true, value: await work(db, user) };
    });
    if (!outcome.ok) throw outcome.error;
    return outcome.value;
  }
}

function roleOfUser(user: UserAccount): Role {
  const role = user.roles[0] ?? '';
  if (!isRole(role)) throw new AppError('IDENTITY_USER_NOT_FOUND');
  return role;
}

function checkGrant(grantor: Role, role: Role): void {
  if (!roleGrants[grantor].includes(role)) {
    throw new AppError('IDENTITY_ROLE_NOT_GRANTABLE', `A ${grantor} cannot grant or change the role ${role}.`);
  }
}

/** A client has exactly one entity; staff up to the limit; other roles none (they see all). */
function checkAssignmentShape(role: Role, entityIds: readonly string[]): void {
  if (new Set(entityIds).size !== entityIds.length)
    throw new AppError('IDENTITY_ASSIGNMENT_INVALID', 'Duplicate entities.');
  if (role === 'client' && entityIds.length !== 1) {
    throw new AppError('IDENTITY_ASSIGNMENT_INVALID', 'A client user has exactly one entity.');
  }
  if (role === 'staff' && entityIds.length > identityLimits.entityAssignmentsMax) {
    throw new AppError('IDENTITY_ASSIGNMENT_INVALID', `At most ${identityLimits.entityAssignmentsMax} entities.`);
  }
  if (!entityScopedRoles.includes(role) && entityIds.length > 0) {
    throw new AppError(
      'IDENTITY_ASSIGNMENT_INVALID',
      `A ${role} sees every entity; assignments are for staff and client.`,
    );
  }
}

async function checkEntitiesExist(db: TenantDb, entityIds: readonly string[]): Promise<void> {
  if (entityIds.length === 0) return;
  if ((await countEntities(db, entityIds)) !== entityIds.length) {
    throw new AppError('IDENTITY_ASSIGNMENT_INVALID', 'An entity does not exist in the firm.');
  }
}
