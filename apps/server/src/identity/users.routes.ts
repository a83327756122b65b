import type pg from 'pg';
import { Type } from 'typebox';
import type { PlatformAudit } from '../audit/platform-audit.ts';
import { requestOrigin } from '../audit/request-origin.ts';
import { AppError } from '../platform/errors.ts';
import type { App } from '../platform/http/http-types.ts';
import { operatorSecurity, problemResponses, tenantSecurity } from '../platform/http/schemas.ts';
import { formatId, idPattern, parseId } from '../platform/ids.ts';
import type { Sealer } from '../platform/local-secrets.ts';
import { type TenancyService, tenantContextOf } from '../tenancy/tenancy.service.ts';
import { isRole, type Role, requirePermission, roles } from './access.ts';
import type { ApiKey, ApiKeysService } from './api-keys.ts';
import { requireOperator, requirePrincipal } from './auth.plugin.ts';
import { identityLimits } from './identity.limits.ts';
import { originOf } from './identity.routes.ts';
import { loadSigningKeys, rotateSigningKeys } from './signing-keys.ts';
import type { TokenService } from './tokens.ts';
import type { Member, UsersService } from './users.service.ts';

const RoleSchema = Type.Union(roles.map((role) => Type.Literal(role)));
const EntityIds = Type.Array(Type.String({ pattern: idPattern('entity') }), {
  maxItems: identityLimits.entityAssignmentsMax,
});
const UserParams = Type.Object({ userId: Type.String({ maxLength: 100 }) });

function entityUuids(ids: readonly string[]): string[] {
  return ids.map((id) => parseId('entity', id) ?? '');
}

function userIdOf(value: string): string {
  const id = parseId('user', value);
  if (id === null) throw new AppError('IDENTITY_USER_NOT_FOUND');
  return id;
}

function renderMember(member: Member) {
  return {
    id: formatId('user', member.user.id),
    email: member.user.email,
    role: member.user.roles[0] ?? null,
    status: member.user.status,
    mfaEnrolled: member.user.mfaConfirmed,
    entityIds: member.entityIds.map((id) => formatId('entity', id)),
    createdAt: member.user.createdAt.toISOString(),
  };
}

function renderKey(key: ApiKey) {
  return {
    id: formatId('apiKey', key.id),
    name: key.name,
    prefix: key.prefix,
    scope: key.scope,
    entityIds: key.entityIds === null ? null : key.entityIds.map((id) => formatId('entity', id)),
    createdBy: formatId('user', key.createdBy),
    expiresAt: key.expiresAt?.toISOString() ?? null,
    revokedAt: key.revokedAt?.toISOString() ?? null,
    lastUsedAt: key.lastUsedAt?.toISOString() ?? null,
    createdAt: key.createdAt.toISOString(),
  };
}

const MemberSchema = Type.Object({}, { additionalProperties: true });

function actorRole(roleName: string | undefined): Role {
  if (roleName === undefined || !isRole(roleName)) throw new AppError('AUTH_FORBIDDEN');
  return roleName;
}

export interface UsersRoutesOptions {
  users: UsersService;
  apiKeys: ApiKeysService;
  tenancy: TenancyService;
  /** Base of the invitation link; the request's own origin when null. */
  publicUrl: string | null;
}

/** People, invitations and API keys of a firm (tenant routes), and invitation acceptance (public). */
export async function usersRoutes(app: App, options: UsersRoutesOptions): Promise<void> {
  const { users, tenancy } = options;
  app.post(
    '/v1/invitations/accept',
    {
      schema: {
        summary: 'Accept an invitation: set a password and join the firm with the invited role',
        tags: ['identity'],
        body: Type.Object(
          {
            token: Type.String({ maxLength: 200 }),
            password: Type.String({ minLength: 1, maxLength: identityLimits.passwordLengthMax }),
          },
          { additionalProperties: false },
        ),
        response: {
          201: Type.Object({ tenantId: Type.String(), userId: Type.String(), email: Type.String() }),
          ...problemResponses,
        },
      },
    },
    async (request, reply) => {
      const tenantOf = async (tenantId: string) => {
        const record = await tenancy.lookup(tenantId);
        return record && record.status === 'active' ? tenantContextOf(record) : null;
      };
      const accepted = await users.accept(tenantOf, request.body.token, request.body.password, originOf(request));
      return reply.code(201).send({
        tenantId: formatId('tenant', accepted.tenantId),
        userId: formatId('user', accepted.userId),
        email: accepted.email,
      });
    },
  );
  await app.register(firmAdminRoutes, options);
}

async function firmAdminRoutes(app: App, options: UsersRoutesOptions): Promise<void> {
  const { users, apiKeys } = options;
  app.addHook('onRequest', app.authenticateTenant);

  app.get(
    '/v1/users',
    {
      config: { ...requirePermission('identity.users.read') },
      schema: {
        summary: "The firm's users: role, status, MFA and assigned entities",
        tags: ['identity'],
        security: tenantSecurity,
        response: { 200: Type.Object({ items: Type.Array(MemberSchema) }), ...problemResponses },
      },
    },
    async (request) => ({ items: (await users.list(requirePrincipal(request).tenant)).map(renderMember) }),
  );

  app.post(
    '/v1/invitations',
    {
      config: { ...requirePermission('identity.users.invite') },
      schema: {
        summary: 'Invite a person by email with a role (entities for staff and client); answers the single-use link',
        description:
          'No mail transport is configured: the link is returned here (and logged) for the inviter to pass on. It works once and expires in 7 days.',
        tags: ['identity'],
        security: tenantSecurity,
        body: Type.Object(
          {
            email: Type.String({ format: 'email', maxLength: identityLimits.emailLengthMax }),
            role: RoleSchema,
            entityIds: Type.Optional(EntityIds),
          },
          { additionalProperties: false },
        ),
        response: { 201: MemberSchema, ...problemResponses },
      },
    },
    async (request, reply) => {
      const principal = requirePrincipal(request);
      const invitation = await users.invite(
        principal.tenant,
        { userId: principal.userId, role: actorRole(principal.roles[0]) },
        { email: request.body.email, role: request.body.role, entityIds: entityUuids(request.body.entityIds ?? []) },
        originOf(request),
      );
      const base = options.publicUrl ?? `${request.protocol}://${request.host}`;
      const acceptUrl = `${base}/accept-invitation#${invitation.token}`;
      request.log.info(
        { invitationId: formatId('invitation', invitation.id), email: invitation.email, acceptUrl },
        'invitation created; no mail transport, the link goes to the inviter',
      );
      return reply
        .code(201)
        .header('cache-control', 'no-store')
        .send({
          id: formatId('invitation', invitation.id),
          email: invitation.email,
          role: invitation.role,
          token: invitation.token,
          acceptUrl,
          expiresAt: invitation.expiresAt.toISOString(),
        });
    },
  );

  app.put(
    '/v1/users/:userId/role',
    {
      config: { ...requirePermission('identity.users.changeRole') },
      schema: {
        summary: "Change a user's role (step-up); their sessions end",
        tags: ['identity'],
        security: tenantSecurity,
        params: UserParams,
        body: Type.Object({ role: RoleSchema, entityIds: Type.Optional(EntityIds) }, { additionalProperties: false }),
        response: { 200: MemberSchema, ...problemResponses },
      },
    },
    async (request) => {
      const principal = requirePrincipal(request);
      const member = await users.changeRole(
        principal.tenant,
        { userId: principal.userId, role: actorRole(principal.roles[0]) },
        userIdOf(request.params.userId),
        {
          role: request.body.role,
          entityIds: request.body.entityIds === undefined ? undefined : entityUuids(request.body.entityIds),
        },
        originOf(request),
      );
      return renderMember(member);
    },
  );

  app.put(
    '/v1/users/:userId/entities',
    {
      config: { ...requirePermission('identity.users.assign') },
      schema: {
        summary: 'Set the client entities a staff or client user may see; their sessions end',
        tags: ['identity'],
        security: tenantSecurity,
        params: UserParams,
        body: Type.Object({ entityIds: EntityIds }, { additionalProperties: false }),
        response: { 200: MemberSchema, ...problemResponses },
      },
    },
    async (request) => {
      const principal = requirePrincipal(request);
      const member = await users.assign(
        principal.tenant,
        { userId: principal.userId },
        userIdOf(request.params.userId),
        entityUuids(request.body.entityIds),
        originOf(request),
      );
      return renderMember(member);
    },
  );

  app.post(
    '/v1/users/:userId/disable',
    {
      config: { ...requirePermission('identity.users.disable') },
      schema: {
        summary: 'Disable a user (step-up): sign-in refused, sessions end',
        tags: ['identity'],
        security: tenantSecurity,
        params: UserParams,
        response: { 200: MemberSchema, ...problemResponses },
      },
    },
    async (request) => {
      const principal = requirePrincipal(request);
      const member = await users.disable(
        principal.tenant,
        { userId: principal.userId, role: actorRole(principal.roles[0]) },
        userIdOf(request.params.userId),
        originOf(request),
      );
      return renderMember(member);
    },
  );

  app.post(
    '/v1/api-keys',
    {
      config: { ...requirePermission('identity.apiKeys.manage') },
      schema: {
        summary: 'Create an API key (the secret is shown once)',
        tags: ['identity'],
        security: tenantSecurity,
        body: Type.Object(
          {
            name: Type.String({ minLength: 1, maxLength: identityLimits.apiKeyNameLengthMax, pattern: '\\S' }),
            scope: Type.Union([Type.Literal('read'), Type.Literal('write')]),
            entityIds: Type.Optional(EntityIds),
            expiresAt: Type.Optional(Type.String({ format: 'date-time' })),
          },
          { additionalProperties: false },
        ),
        response: { 201: MemberSchema, ...problemResponses },
      },
    },
    async (request, reply) => {
      const principal = requirePrincipal(request);
      const body = request.body;
      const created = await apiKeys.create(
        principal.tenant,
        principal.userId,
        {
          name: body.name,
          scope: body.scope,
          entityIds: body.entityIds === undefined ? null : entityUuids(body.entityIds),
          expiresAt: body.expiresAt === undefined ? null : new Date(body.expiresAt),
        },
        originOf(request),
      );
      return reply
        .code(201)
        .header('cache-control', 'no-store')
        .send({ ...renderKey(created.key), key: created.secret });
    },
  );

  app.get(
    '/v1/api-keys',
    {
      config: { ...requirePermission('identity.apiKeys.manage') },
      schema: {
        summary: "The firm's API keys (prefixes only, never secrets)",
        tags: ['identity'],
        security: tenantSecurity,
        response: { 200: Type.Object({ items: Type.Array(MemberSchema) }), ...problemResponses },
      },
    },
    async (request) => ({ items: (await apiKeys.list(requirePrincipal(request).tenant)).map(renderKey) }),
  );

  app.post(
    '/v1/api-keys/:keyId/revoke',
    {
      config: { ...requirePermission('identity.apiKeys.manage') },
      schema: {
        summary: 'Revoke an API key at once',
        tags: ['identity'],
        security: tenantSecurity,
        params: Type.Object({ keyId: Type.String({ maxLength: 100 }) }),
        response: { 200: MemberSchema, ...problemResponses },
      },
    },
    async (request) => {
      const principal = requirePrincipal(request);
      const keyId = parseId('apiKey', request.params.keyId);
      if (keyId === null) throw new AppError('IDENTITY_API_KEY_NOT_FOUND');
      return renderKey(await apiKeys.revoke(principal.tenant, principal.userId, keyId, originOf(request)));
    },
  );
}

/** The operator's key rotation for the built-in issuer. */
export async function signingKeyRoutes(
  app: App,
  options: { ownerPool: pg.Pool; sealer: Sealer; tokens: TokenService; platformAudit: PlatformAudit },
): Promise<void> {
  app.addHook('onRequest', app.authenticateOperator);
  app.post(
    '/v1/admin/signing-keys/rotate',
    {
      schema: {
        summary: 'Rotate the signing key: a new key signs, the JWKS keeps the previous one until its tokens expire',
        tags: ['operator'],
        security: operatorSecurity,
        response: {
          200: Type.Object({
            kid: Type.String(),
            retired: Type.Array(Type.String()),
            published: Type.Array(Type.String()),
          }),
          ...problemResponses,
        },
      },
    },
    async (request) => {
      // The key signs every firm's tokens: the rotation goes to the platform's log, not a firm's.
      const rotated = await options.platformAudit.record(
        requestOrigin(request, requireOperator(request)),
        async () => {
          const rotation = await rotateSigningKeys(
            options.ownerPool,
            options.sealer,
            identityLimits.signingKeyRetireAfterSeconds,
          );
          options.tokens.replaceKeys(await loadSigningKeys(options.ownerPool, options.sealer));
          return rotation;
        },
        (rotation) => ({
          action: 'signing_key.rotate',
          resource: { type: 'signing_key', id: rotation.kid },
          after: rotation,
          summary: { kid: rotation.kid, retired: rotation.retired.length },
        }),
      );
      return { ...rotated, published: options.tokens.jwks.keys.map((key) => String(key.kid)) };
    },
  );
}
