import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyBaseLogger, FastifyInstance, onRequestAsyncHookHandler, RawServerDefault } from 'fastify';
import type { AuditActor, TenantContext } from '../database/tenant-scope.ts';

/** The Fastify instance every domain plugin receives, typed by its TypeBox schemas. */
export type App = FastifyInstance<
  RawServerDefault,
  IncomingMessage,
  ServerResponse,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;

/** Who is calling, set by the auth hooks; route code reads it through `requirePrincipal`. */
export interface Principal {
  tenant: TenantContext;
  /** The user acting; for an API key, the user who created it (recorded as the author). */
  userId: string;
  /** The one role of the user in this firm (`[role]`), or empty for an API key. */
  roles: string[];
  /** How the caller authenticated: a built-in token, an external OIDC token, or an API key. */
  credential: 'password' | 'oidc' | 'apiKey';
  /** The API key's id when `credential` is `apiKey`. */
  apiKeyId: string | null;
  /** The sign-in session (refresh-token family) of a built-in token. */
  sessionId: string | null;
  /** Authentication methods (RFC 8176) and when the user last authenticated (epoch seconds). */
  amr: string[];
  authTimeSeconds: number | null;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
    /** The operator behind an operator request, set by `authenticateOperator`. */
    operator: AuditActor | null;
  }
  interface FastifyInstance {
    /** onRequest hook: a valid tenant access token for an active tenant. */
    authenticateTenant: onRequestAsyncHookHandler;
    /** onRequest hook: the operator bearer key. */
    authenticateOperator: onRequestAsyncHookHandler;
  }
}
