import type { FastifyReply, FastifyRequest } from 'fastify';
import fastifyPlugin from 'fastify-plugin';
import { assert } from '../platform/assert.ts';
import type { App } from '../platform/http/http-types.ts';
import { sendProblem } from '../platform/http/problem.ts';
import type { LimitsService } from './limits.service.ts';
import type { RateDecision, RouteClass } from './limits.types.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** How the limits domain costs and prioritises the route; by method when absent (GET = read). */
    routeClass?: RouteClass;
  }
}

/** Probes and the limits report are never shed or counted: an overloaded instance must still say so. */
const exemptUrls: ReadonlySet<string> = new Set(['/healthz', '/readyz', '/v1/admin/limits']);

/** The bearer credential, as the auth hooks read it; the penalty box's key. */
function bearerOf(request: FastifyRequest): string | null {
  const match = /^Bearer ([^\s]+)$/i.exec(request.headers.authorization ?? '');
  return match?.[1] ?? null;
}

function routeClassOf(request: FastifyRequest): RouteClass {
  const declared = request.routeOptions.config.routeClass;
  if (declared !== undefined) return declared;
  return request.method === 'GET' || request.method === 'HEAD' ? 'read' : 'write';
}

/**
 * The RateLimit headers (IETF draft "RateLimit header fields"): whichever of the bucket and
 * the quota binds first. Limit and remaining are in tokens (weighted requests); reset is in
 * seconds until the bucket is full again, or until the quota window rolls over.
 */
function setRateLimitHeaders(reply: FastifyReply, decision: RateDecision, burst: number): void {
  const quotaRemaining = Math.max(0, decision.quotaLimit - decision.quotaUsed);
  const quotaBinds = quotaRemaining < decision.bucketRemaining;
  reply.header('ratelimit-limit', String(quotaBinds ? decision.quotaLimit : burst));
  reply.header('ratelimit-remaining', String(quotaBinds ? quotaRemaining : decision.bucketRemaining));
  reply.header(
    'ratelimit-reset',
    String(Math.ceil((quotaBinds ? decision.quotaResetInMs : decision.bucketFullInMs) / 1000)),
  );
}

/**
 * Request admission for every route, run after the route's authentication (so the tenant
 * is known) and before the body is read (so a refused request costs little): load shedding,
 * the tenant's bulkhead, then its usage plan. Every tenant response carries the RateLimit
 * headers; a refusal is problem+json with Retry-After.
 */
export const limitsPlugin = fastifyPlugin(
  async (app: App, options: { limits: LimitsService }) => {
    const { limits } = options;
    const admittedTenantRequests = new WeakSet<FastifyRequest>();
    // Root onRequest runs before each route's authentication: a caller certain to be refused
    // is answered without verifying its token again (penalty-box.ts).
    app.addHook('onRequest', async (request, reply) => {
      const callerKey = bearerOf(request);
      if (callerKey === null) return;
      const early = limits.refuseEarly(callerKey);
      if (early === null) return;
      setRateLimitHeaders(reply, early.decision, early.burst);
      // Answered here rather than thrown: the same problem+json, without the error-hook round trip.
      return sendProblem(reply, early.error);
    });
    app.addHook('preParsing', async (request, reply, payload) => {
      if (request.routeOptions.url !== undefined && exemptUrls.has(request.routeOptions.url)) return payload;
      const tenant = request.principal?.tenant ?? null;
      const callerKey = tenant === null ? undefined : (bearerOf(request) ?? undefined);
      const admission = await limits.admit(tenant, routeClassOf(request), callerKey);
      if (admission.decision !== null && tenant !== null) {
        const plan = await limits.planOf(tenant);
        setRateLimitHeaders(reply, admission.decision, plan.usagePlan.burst);
      }
      if (admission.outcome === 'refused') {
        request.log.debug({ code: admission.error.code }, 'request refused by limits');
        throw admission.error;
      }
      if (tenant !== null) admittedTenantRequests.add(request);
      // 'close' fires once the response is done or the client went away, whichever is first.
      reply.raw.once('close', admission.release);
      return payload;
    });
    // A route that authenticates tenants after onRequest would slip past its usage plan. (Routes
    // of plugins registered before the auth plugin do not have the principal property at all.)
    app.addHook('preHandler', async (request) => {
      assert(
        (request.principal ?? null) === null || admittedTenantRequests.has(request),
        `route ${request.routeOptions.url} authenticated a tenant after onRequest: limits were not applied`,
      );
    });
  },
  { name: 'limits', fastify: '5.x', dependencies: ['auth'] },
);
