import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify from 'fastify';
import type { Logger } from 'pino';
import { auditAdminRoutes, auditRoutes } from '../../audit/audit.routes.ts';
import { entitiesRoutes } from '../../entities/entities.routes.ts';
import { authPlugin } from '../../identity/auth.plugin.ts';
import { identityRoutes } from '../../identity/identity.routes.ts';
import { signingKeyRoutes, usersRoutes } from '../../identity/users.routes.ts';
import { jobsAdminRoutes, jobsRoutes } from '../../jobs/jobs.routes.ts';
import { entityImportRoutes } from '../../jobs/kinds/entity-import.routes.ts';
import { ledgerRoutes } from '../../ledger/ledger.routes.ts';
import { reportPackRoutes } from '../../ledger/reports/report-packs.routes.ts';
import { limitsPlugin } from '../../limits/limits.plugin.ts';
import { limitsRoutes } from '../../limits/limits.routes.ts';
import { billingRoutes } from '../../metering/billing/billing.routes.ts';
import { meteringRoutes } from '../../metering/metering.routes.ts';
import { requestMeteringPlugin } from '../../metering/request-metering.plugin.ts';
import { operatorsRoutes } from '../../operators/operators.routes.ts';
import { tenancyRoutes } from '../../tenancy/tenancy.routes.ts';
import { tenantDataRoutes } from '../../tenant-data/tenant-data.routes.ts';
import { newPublicId } from '../ids.ts';
import type { Platform } from '../platform.ts';
import { installErrorHandling } from './error-handling.ts';
import { healthRoutes } from './health.routes.ts';
import type { App } from './http-types.ts';
import { ProblemSchema } from './schemas.ts';
import { buildValidator } from './validation.ts';

export const httpLimits = {
  bodyBytesMax: 256 * 1024,
  requestTimeoutMs: 30_000,
  /** How long shutdown waits for in-flight requests before closing connections. */
  shutdownGraceMs: 10_000,
} as const;

const incomingRequestId = /^[A-Za-z0-9._:-]{1,64}$/;

/** Assembles the HTTP server: platform plugins first, then one encapsulated plugin per domain. */
export async function buildHttpApp(platform: Platform, log: Logger): Promise<App> {
  const app = Fastify({
    loggerInstance: log,
    bodyLimit: httpLimits.bodyBytesMax,
    requestTimeout: httpLimits.requestTimeoutMs,
    return503OnClosing: true,
    requestIdHeader: false,
    genReqId: (request) => {
      const given = request.headers['x-request-id'];
      return typeof given === 'string' && incomingRequestId.test(given) ? given : newPublicId('request');
    },
    schemaController: { compilersFactory: { buildValidator } },
  }).withTypeProvider<TypeBoxTypeProvider>() as unknown as App;

  // The API speaks JSON only; Fastify's default text/plain parser would let text reach handlers.
  app.removeContentTypeParser('text/plain');
  app.addSchema(ProblemSchema);
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });
  installErrorHandling(app);

  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Countinghouse API',
        version: '0.1.0',
        description:
          'Multi-tenant financial operations for accounting firms. Errors are RFC 9457 problem+json with a stable `code`.',
      },
      components: {
        securitySchemes: {
          bearerAuth: {
            type: 'http',
            scheme: 'bearer',
            bearerFormat: 'JWT',
            description: 'Tenant access token from POST /v1/auth/token.',
          },
          operatorKey: {
            type: 'http',
            scheme: 'bearer',
            description: 'The operator key (COUNTINGHOUSE_OPERATOR_KEY).',
          },
        },
      },
    },
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  await app.register(authPlugin, {
    credentials: platform.credentials,
    tenancy: platform.tenancy,
    operators: platform.operators,
  });
  await app.register(limitsPlugin, { limits: platform.limits });
  await app.register(requestMeteringPlugin, { metering: platform.metering });
  await app.register(healthRoutes, { isReady: platform.isReady });
  await app.register(identityRoutes, { identity: platform.identity, mfa: platform.mfa, tokens: platform.tokens });
  await app.register(usersRoutes, {
    users: platform.users,
    apiKeys: platform.apiKeys,
    tenancy: platform.tenancy,
    publicUrl: platform.publicUrl,
  });
  await app.register(signingKeyRoutes, {
    ownerPool: platform.ownerPool,
    sealer: platform.sealer,
    tokens: platform.tokens,
    platformAudit: platform.platformAudit,
  });
  await app.register(tenancyRoutes, { tenancy: platform.tenancy, operatorAudit: platform.operatorAudit });
  await app.register(tenantDataRoutes, { tenantData: platform.tenantData, operatorAudit: platform.operatorAudit });
  await app.register(entitiesRoutes, { entities: platform.entities });
  await app.register(entityImportRoutes, { jobs: platform.jobs });
  await app.register(jobsRoutes, { jobs: platform.jobs });
  await app.register(jobsAdminRoutes, { jobs: platform.jobs });
  await app.register(limitsRoutes, { limits: platform.limits, operatorAudit: platform.operatorAudit });
  await app.register(ledgerRoutes, { ledger: platform.ledger });
  await app.register(reportPackRoutes, { packs: platform.reportPacks });
  await app.register(meteringRoutes, {
    metering: platform.metering,
    service: platform.usage,
    store: platform.usageStore,
  });
  await app.register(billingRoutes, { billing: platform.billing, operatorAudit: platform.operatorAudit });
  await app.register(auditRoutes, { audit: platform.audit });
  await app.register(auditAdminRoutes, {
    audit: platform.audit,
    tenancy: platform.tenancy,
    platformAudit: platform.platformAudit,
  });
  await app.register(operatorsRoutes, { operators: platform.operators });
  await app.ready();
  return app;
}
