import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { App } from '../platform/http/http-types.ts';
import { problemResponses, tenantSecurity } from '../platform/http/schemas.ts';
import { formatId, parseId } from '../platform/ids.ts';
import { requirePermission } from './access.ts';
import { requirePrincipal } from './auth.plugin.ts';
import type { AuthOrigin } from './auth-events.ts';
import { identityLimits } from './identity.limits.ts';
import type { IdentityService, SessionTokens } from './identity.service.ts';
import type { MfaService } from './mfa.service.ts';
import type { TokenService } from './tokens.ts';

const TokenBody = Type.Object(
  {
    tenantId: Type.String({ minLength: 1, maxLength: 64 }),
    email: Type.String({ minLength: 1, maxLength: identityLimits.emailLengthMax }),
    password: Type.String({ minLength: 1, maxLength: identityLimits.passwordLengthMax }),
  },
  { additionalProperties: false },
);

const SessionResponse = Type.Object({
  access_token: Type.String(),
  token_type: Type.Literal('Bearer'),
  expires_in: Type.Integer({ description: 'Seconds until the access token expires.' }),
  refresh_token: Type.Optional(
    Type.String({ description: 'Single use: exchange it at POST /v1/auth/refresh for the next pair.' }),
  ),
  mfa_enrolment_required: Type.Optional(
    Type.Boolean({ description: 'The token reaches only the MFA enrolment routes until a second factor is enrolled.' }),
  ),
});

const MfaChallengeResponse = Type.Object({
  mfa_required: Type.Literal(true),
  mfa_token: Type.String({ description: 'Send it with a code to POST /v1/auth/mfa within 5 minutes.' }),
  expires_in: Type.Integer(),
});

const CodeText = Type.String({ minLength: 6, maxLength: 32 });
const Jwks = Type.Object({ keys: Type.Array(Type.Object({}, { additionalProperties: true })) });

export function originOf(request: FastifyRequest): AuthOrigin {
  return { requestId: request.id, sourceAddress: request.ip };
}

function sendSession(reply: FastifyReply, tokens: SessionTokens) {
  return reply.header('cache-control', 'no-store').send({
    access_token: tokens.accessToken,
    token_type: 'Bearer' as const,
    expires_in: tokens.expiresInSeconds,
    ...(tokens.refreshToken === null ? {} : { refresh_token: tokens.refreshToken }),
    ...(tokens.mfaEnrolmentRequired ? { mfa_enrolment_required: true } : {}),
  });
}

export interface IdentityRoutesOptions {
  identity: IdentityService;
  mfa: MfaService;
  tokens: TokenService;
}

/** Sign-in, refresh, the second factor and key publication of the built-in issuer (no bearer needed). */
export async function identityRoutes(app: App, options: IdentityRoutesOptions): Promise<void> {
  const { identity, tokens } = options;

  app.post(
    '/v1/auth/token',
    {
      schema: {
        summary: 'Sign in to one firm with a password',
        description:
          'Answers an access token (15 minutes) and a refresh token, or `mfa_required` with a token to complete at POST /v1/auth/mfa. Repeated failures lock the account and the source address for a while (429 AUTH_SIGN_IN_THROTTLED).',
        tags: ['identity'],
        body: TokenBody,
        response: { 200: Type.Union([SessionResponse, MfaChallengeResponse]), ...problemResponses },
      },
    },
    async (request, reply) => {
      const { tenantId, email, password } = request.body;
      const result = await identity.signIn(parseId('tenant', tenantId), email, password, originOf(request));
      if (result.kind === 'session') return sendSession(reply, result.tokens);
      return reply.header('cache-control', 'no-store').send({
        mfa_required: true as const,
        mfa_token: result.challengeToken,
        expires_in: identityLimits.mfaChallengeTtlSeconds,
      });
    },
  );

  app.post(
    '/v1/auth/mfa',
    {
      schema: {
        summary: 'Complete a sign-in with a TOTP code or a recovery code',
        tags: ['identity'],
        body: Type.Object(
          { mfa_token: Type.String({ maxLength: 4096 }), code: CodeText },
          { additionalProperties: false },
        ),
        response: { 200: SessionResponse, ...problemResponses },
      },
    },
    async (request, reply) =>
      sendSession(reply, await identity.verifyMfa(request.body.mfa_token, request.body.code, originOf(request))),
  );

  app.post(
    '/v1/auth/refresh',
    {
      schema: {
        summary: 'Exchange a refresh token for a new access and refresh token (rotation)',
        description:
          'Each refresh token works once. Presenting a used one revokes its whole session (reuse detection).',
        tags: ['identity'],
        body: Type.Object({ refresh_token: Type.String({ maxLength: 200 }) }, { additionalProperties: false }),
        response: { 200: SessionResponse, ...problemResponses },
      },
    },
    async (request, reply) => sendSession(reply, await identity.refresh(request.body.refresh_token, originOf(request))),
  );

  app.get(
    '/.well-known/jwks.json',
    { schema: { summary: 'Public keys that verify access tokens', tags: ['identity'], response: { 200: Jwks } } },
    async (_request, reply) => reply.header('cache-control', 'public, max-age=300').send(tokens.jwks),
  );

  await app.register(selfRoutes, options);
}

/** The signed-in user's own session and second factor (action `identity.self`). */
async function selfRoutes(app: App, options: IdentityRoutesOptions): Promise<void> {
  const { identity, mfa } = options;
  app.addHook('onRequest', app.authenticateTenant);
  const self = { config: { ...requirePermission('identity.self') } };

  app.get(
    '/v1/me',
    {
      ...self,
      schema: {
        summary: 'Who the bearer is: user, firm, role, entity scope and authentication',
        tags: ['identity'],
        security: tenantSecurity,
        response: { 200: Type.Object({}, { additionalProperties: true }), ...problemResponses },
      },
    },
    async (request) => {
      const principal = requirePrincipal(request);
      const scope = principal.tenant.entityScope;
      return {
        userId: formatId('user', principal.userId),
        tenantId: formatId('tenant', principal.tenant.tenantId),
        role: principal.roles[0] ?? null,
        credential: principal.credential,
        apiKeyId: principal.apiKeyId,
        entityIds: scope.kind === 'all' ? null : scope.entityIds.map((id) => formatId('entity', id)),
        amr: principal.amr,
        authTime: principal.authTimeSeconds,
      };
    },
  );

  app.post(
    '/v1/auth/sign-out',
    {
      ...self,
      schema: {
        summary: "Sign out: revoke this session's refresh tokens (or every session of the user)",
        tags: ['identity'],
        security: tenantSecurity,
        body: Type.Optional(
          Type.Object({ everywhere: Type.Optional(Type.Boolean()) }, { additionalProperties: false }),
        ),
        response: { 200: Type.Object({ revokedTokens: Type.Integer() }), ...problemResponses },
      },
    },
    async (request) => {
      const principal = requirePrincipal(request);
      const everywhere = request.body?.everywhere === true;
      return await identity.signOut(
        principal.tenant,
        principal.userId,
        principal.sessionId,
        everywhere,
        originOf(request),
      );
    },
  );

  app.post(
    '/v1/auth/step-up',
    {
      ...self,
      schema: {
        summary: 'Prove a second factor again for a sensitive operation; answers a fresh access token',
        tags: ['identity'],
        security: tenantSecurity,
        body: Type.Object({ code: CodeText }, { additionalProperties: false }),
        response: { 200: SessionResponse, ...problemResponses },
      },
    },
    async (request, reply) => {
      const principal = requirePrincipal(request);
      const tokens = await identity.stepUp(
        principal.tenant,
        principal.userId,
        principal.sessionId,
        request.body.code,
        originOf(request),
      );
      return sendSession(reply, tokens);
    },
  );

  app.post(
    '/v1/me/mfa/totp',
    {
      ...self,
      schema: {
        summary: 'Start TOTP enrolment: a secret and an otpauth:// URI for the authenticator app',
        tags: ['identity'],
        security: tenantSecurity,
        response: { 200: Type.Object({ secret: Type.String(), otpauthUri: Type.String() }), ...problemResponses },
      },
    },
    async (request, reply) => {
      const principal = requirePrincipal(request);
      return reply.header('cache-control', 'no-store').send(await mfa.startTotp(principal.tenant, principal.userId));
    },
  );

  app.post(
    '/v1/me/mfa/totp/confirm',
    {
      ...self,
      schema: {
        summary: 'Confirm TOTP enrolment with a code; answers recovery codes (shown once) and new tokens',
        tags: ['identity'],
        security: tenantSecurity,
        body: Type.Object({ code: CodeText }, { additionalProperties: false }),
        response: {
          200: Type.Object({ recoveryCodes: Type.Array(Type.String()), tokens: SessionResponse }),
          ...problemResponses,
        },
      },
    },
    async (request, reply) => {
      const principal = requirePrincipal(request);
      const result = await mfa.confirmTotp(principal.tenant, principal.userId, request.body.code, originOf(request));
      return reply.header('cache-control', 'no-store').send({
        recoveryCodes: result.recoveryCodes,
        tokens: {
          access_token: result.tokens.accessToken,
          token_type: 'Bearer' as const,
          expires_in: result.tokens.expiresInSeconds,
          ...(result.tokens.refreshToken === null ? {} : { refresh_token: result.tokens.refreshToken }),
        },
      });
    },
  );
}
