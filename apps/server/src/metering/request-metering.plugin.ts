import fastifyPlugin from 'fastify-plugin';
import type { App } from '../platform/http/http-types.ts';
import type { Metering } from './metering.runtime.ts';

// The route class (`config.routeClass`) is declared by the limits domain (limits.plugin.ts).
export type { RouteClass } from '../limits/limits.types.ts';

/**
 * Meters every request after its response is sent: a `requests` event for an authenticated
 * tenant (route class, status and wall time as properties), the tenant's share of CPU for
 * the window, and the duration histogram for /metrics. Nothing here waits on I/O.
 */
export const requestMeteringPlugin = fastifyPlugin(
  async (app: App, options: { metering: Metering }) => {
    const { metering } = options;
    app.addHook('onResponse', async (request, reply) => {
      const durationMs = reply.elapsedTime;
      const routeClass =
        request.routeOptions.config?.routeClass ??
        (request.method === 'GET' || request.method === 'HEAD' ? 'read' : 'write');
      const principal = request.principal;
      metering.metrics.observeRequest(
        principal?.tenant.tier ?? 'none',
        routeClass,
        reply.statusCode,
        durationMs / 1_000,
      );
      if (principal === null) return;
      metering.recordRequest(principal.tenant, {
        routeClass,
        status: reply.statusCode,
        durationUs: Math.round(durationMs * 1_000),
      });
    });
  },
  { name: 'request-metering', fastify: '5.x', dependencies: ['auth'] },
);
