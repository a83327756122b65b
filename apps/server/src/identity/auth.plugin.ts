import type { FastifyRequest } from 'fastify';
import fastifyPlugin from 'fastify-plugin';
import { requestOrigin } from '../audit/request-origin.ts';
import type { OperatorsService } from '../operators/operators.service.ts';
import { assert } from '../platform/assert.ts';
import { type AuditActor, allEntities, type EntityScope } from '../platform/database/tenant-scope.ts';
import { AppError } from '../platform/errors.ts';
import type { App, Principal } from '../platform/http/http-types.ts';
import { formatId } from '../platform/ids.ts';
import { type TenancyService, tenantContextOf } from '../tenancy/tenancy.service.ts';
import { type Action, entityScopedRoles, exportFormats, isAction } from './access.ts';
import { authorize } from './authorize.ts';
import type { CredentialVerifier, VerifiedCaller } from './credentials.ts';

export interface AuthPluginOptions {
  credentials: CredentialVerifier;
  tenancy: TenancyService;
  /** Who an operator key belongs to: the bootstrap operator or a named one. */
  operators: OperatorsService;
}

/** One route as registered: what the role × route tests walk. */
export interface RegisteredRoute {
  method: string;
  url: string;
  permission: string | undefined;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Every route registered after the auth plugin, with its declared action. */
    routeRegistry: RegisteredRoute[];
  }
}

export function bearerToken(request: FastifyRequest): string | null {
  const header = request.headers.authorization;
  if (header === undefined) return null;
  const match = /^Bearer ([^\s]+)$/i.exec(header);
  return match?.[1] ?? null;
}

/** The principal of an authenticated tenant request; a route without the hook is a bug. */
export function requirePrincipal(request: FastifyRequest): Principal {
  assert(request.principal !== null, `route ${request.routeOptions.url} read the principal without authenticateTenant`);
  return request.principal;
}

/** The operator of an operator request; a route without the hook is a bug. */
export function requireOperator(request: FastifyRequest): AuditActor {
  assert(request.operator !== null, `route ${request.routeOptions.url} read the operator without authenticateOperator`);
  return request.operator;
}

/** The route's action for this request: its export action when the query asks for a bulk format. */
function declaredAction(request: FastifyRequest): Action | undefined {
  const { permission, exportPermission } = request.routeOptions.config;
  const format = (request.query as Record<string, unknown> | undefined)?.format;
  if (exportPermission !== undefined && typeof format === 'string' && exportFormats.includes(format)) {
    return exportPermission;
  }
  return permission;
}

/** Who the audit log names for a verified caller. */
function actorOf(caller: VerifiedCaller): AuditActor {
  if (caller.apiKeyId !== null) return { kind: 'api_key', id: formatId('apiKey', caller.apiKeyId) };
  return { kind: 'user', id: formatId('user', caller.userId) };
}

/**
 * The entity scope PostgreSQL enforces for the caller. Staff and client users see only the
 * entities they are assigned to (none when the credential names none: fail closed); other
 * roles see every entity unless the credential itself is narrowed (an API key's list).
 */
export function entityScopeOf(caller: VerifiedCaller): EntityScope {
  const scoped = caller.facts.kind === 'user' && entityScopedRoles.includes(caller.facts.role);
  if (caller.entityIds === null) return scoped ? { kind: 'only', entityIds: [] } : allEntities;
  return { kind: 'only', entityIds: caller.entityIds };
}

/**
 * Authentication and authorisation hooks shared by all domains. The tenant comes only from
 * a verified credential and the server's own registry — never from the URL or body — and
 * each request's logger carries the tenant id from here on. Every tenant route must declare
 * its access-table action; one that does not is refused to everyone (fail closed).
 */
export const authPlugin = fastifyPlugin(
  async (app: App, options: AuthPluginOptions) => {
    app.decorateRequest('principal', null);
    app.decorateRequest('operator', null);
    const registry: RegisteredRoute[] = [];
    app.decorate('routeRegistry', registry);
    app.addHook('onRoute', (route) => {
      const methods = Array.isArray(route.method) ? route.method : [route.method];
      const permission = (route.config as { permission?: string } | undefined)?.permission;
      for (const method of methods) registry.push({ method, url: route.url, permission });
    });

    app.decorate('authenticateTenant', async (request: FastifyRequest) => {
      const token = bearerToken(request);
      if (token === null) throw new AppError('AUTH_CREDENTIALS_MISSING');
      const caller = await options.credentials.verify(token);
      const tenant = await options.tenancy.lookup(caller.tenantId);
      if (!tenant) throw new AppError('AUTH_TOKEN_INVALID', 'The token names an unknown tenant.');
      if (tenant.status === 'suspended') throw new AppError('TENANT_SUSPENDED', tenant.statusReason ?? undefined);
      if (tenant.status !== 'active') throw new AppError('TENANT_NOT_ACTIVE', `The tenant is ${tenant.status}.`);
      request.log = request.log.child({ tenantId: tenant.id, userId: caller.userId });

      const action = declaredAction(request);
      if (!isAction(action)) {
        request.log.error({ route: request.routeOptions.url }, 'tenant route declares no access-table action');
        throw new AppError('AUTH_ACTION_UNDECLARED');
      }
      const refusal = authorize(caller.facts, action, Math.floor(Date.now() / 1000));
      if (refusal !== null) throw new AppError(refusal, `Action ${action}.`);
      // The origin rides on the tenant context to every service, for the audit log.
      const origin = requestOrigin(request, actorOf(caller));
      request.principal = {
        tenant: { ...tenantContextOf(tenant, entityScopeOf(caller)), origin },
        userId: caller.userId,
        roles: caller.facts.kind === 'user' ? [caller.facts.role] : [],
        credential: caller.credential,
        apiKeyId: caller.apiKeyId,
        sessionId: caller.sessionId,
        amr: caller.facts.kind === 'user' ? [...caller.facts.amr] : [],
        authTimeSeconds: caller.facts.kind === 'user' ? caller.facts.authTimeSeconds : null,
      };
    });

    app.decorate('authenticateOperator', async (request: FastifyRequest) => {
      const token = bearerToken(request);
      const operator = token === null ? null : await options.operators.authenticate(token);
      if (operator === null) throw new AppError('OPERATOR_KEY_INVALID');
      request.operator = operator;
      request.log = request.log.child({ operator: request.operator.id });
    });
  },
  { name: 'auth', fastify: '5.x' },
);
