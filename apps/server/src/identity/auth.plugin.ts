import type { FastifyRequest } from 'fastify';
import fastifyPlugin from 'fastify-plugin';
import { requestOrigin } from '../audit/request-origin.ts';
import { assert } from '../platform/assert.ts';
import type { AuditActor } from '../platform/database/tenant-scope.ts';
import { AppError } from '../platform/errors.ts';
import type { App, Principal } from '../platform/http/http-types.ts';
import { formatId } from '../platform/ids.ts';
import type { OperatorKey } from '../tenancy/operator-key.ts';
import { type TenancyService, tenantContextOf } from '../tenancy/tenancy.service.ts';
import type { TokenService } from './tokens.ts';

export interface AuthPluginOptions {
  tokens: TokenService;
  tenancy: TenancyService;
  operatorKey: OperatorKey;
}

function bearerToken(request: FastifyRequest): string | null {
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

/**
 * Authentication hooks shared by all domains. The tenant comes only from a verified token
 * and the server's own registry — never from the URL or body — and each request's logger
 * carries the tenant id from here on.
 */
export const authPlugin = fastifyPlugin(
  async (app: App, options: AuthPluginOptions) => {
    app.decorateRequest('principal', null);
    app.decorateRequest('operator', null);

    app.decorate('authenticateTenant', async (request: FastifyRequest) => {
      const token = bearerToken(request);
      if (token === null) throw new AppError('AUTH_CREDENTIALS_MISSING');
      const claims = await options.tokens.verify(token);
      const tenant = await options.tenancy.lookup(claims.tenantId);
      if (!tenant) throw new AppError('AUTH_TOKEN_INVALID', 'The token names an unknown tenant.');
      if (tenant.status !== 'active') throw new AppError('TENANT_NOT_ACTIVE', `The tenant is ${tenant.status}.`);
      // The origin rides on the tenant context to every service, for the audit log.
      const origin = requestOrigin(request, { kind: 'user', id: formatId('user', claims.userId) });
      request.principal = {
        tenant: { ...tenantContextOf(tenant), origin },
        userId: claims.userId,
        roles: claims.roles,
      };
      request.log = request.log.child({ tenantId: tenant.id, userId: claims.userId });
    });

    app.decorate('authenticateOperator', async (request: FastifyRequest) => {
      const token = bearerToken(request);
      if (token === null || !options.operatorKey.matches(token)) throw new AppError('OPERATOR_KEY_INVALID');
      request.operator = { kind: 'operator', id: 'bootstrap' };
      request.log = request.log.child({ operator: request.operator.id });
    });
  },
  { name: 'auth', fastify: '5.x' },
);
