import { Type } from 'typebox';
import type { App } from '../platform/http/http-types.ts';
import { problemResponses } from '../platform/http/schemas.ts';
import { parseId } from '../platform/ids.ts';
import { identityLimits } from './identity.limits.ts';
import type { IdentityService } from './identity.service.ts';
import type { TokenService } from './tokens.ts';

const TokenBody = Type.Object(
  {
    tenantId: Type.String({ minLength: 1, maxLength: 64 }),
    email: Type.String({ minLength: 1, maxLength: identityLimits.emailLengthMax }),
    password: Type.String({ minLength: 1, maxLength: identityLimits.passwordLengthMax }),
  },
  { additionalProperties: false },
);

const TokenResponse = Type.Object({
  access_token: Type.String(),
  token_type: Type.Literal('Bearer'),
  expires_in: Type.Integer({ description: 'Seconds until the token expires.' }),
});

const Jwks = Type.Object({ keys: Type.Array(Type.Object({}, { additionalProperties: true })) });

/** Sign-in and key publication of the built-in issuer. */
export async function identityRoutes(
  app: App,
  options: { identity: IdentityService; tokens: TokenService },
): Promise<void> {
  const { identity, tokens } = options;

  app.post(
    '/v1/auth/token',
    {
      schema: {
        summary: 'Sign in with a password and receive a short-lived access token',
        tags: ['identity'],
        body: TokenBody,
        response: { 200: TokenResponse, ...problemResponses },
      },
    },
    async (request, reply) => {
      const { tenantId, email, password } = request.body;
      const issued = await identity.signIn(parseId('tenant', tenantId), email, password);
      return reply
        .header('cache-control', 'no-store')
        .send({ access_token: issued.accessToken, token_type: 'Bearer' as const, expires_in: issued.expiresInSeconds });
    },
  );

  app.get(
    '/.well-known/jwks.json',
    { schema: { summary: 'Public keys that verify access tokens', tags: ['identity'], response: { 200: Jwks } } },
    async (_request, reply) => reply.header('cache-control', 'public, max-age=300').send(tokens.jwks),
  );
}
