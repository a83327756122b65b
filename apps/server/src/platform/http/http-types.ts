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
  userId: string;
  roles: string[];
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
