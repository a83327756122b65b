import fs from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorDocsPath, renderErrorDocs } from '../../../scripts/error-docs.ts';
import { createTenant, startTestStack, type TestStack, type TestTenant } from '../../../test/harness.ts';

/**
 * HTTP conventions every route shares: request ids, health, OpenAPI 3.1 and the reference
 * page, problem+json for unknown routes, and — one sweep over the OpenAPI document — that
 * every route declaring a security scheme refuses a request without credentials.
 */
let stack: TestStack;
let firm: TestTenant;

beforeAll(async () => {
  stack = await startTestStack();
  firm = await createTenant(stack.app, 'Conventions');
});

afterAll(async () => {
  await stack?.close();
});

interface OpenApiOperation {
  security?: Array<Record<string, string[]>>;
}
type OpenApiDocument = { openapi: string; paths: Record<string, Record<string, OpenApiOperation>> };

describe('health and request ids', () => {
  it('answers /healthz and /readyz with 200 and a request id', async () => {
    for (const url of ['/healthz', '/readyz']) {
      const response = await stack.app.inject({ method: 'GET', url });
      expect(response.statusCode).toBe(200);
      expect(response.json()).toEqual({ status: 'ok' });
      expect(response.headers['x-request-id']).toMatch(/^req_[0-9a-f]{32}$/);
    }
  });

  it('puts the request id on error responses and in the problem, and keeps a well-formed incoming one', async () => {
    const response = await stack.app.inject({
      method: 'GET',
      url: '/v1/nowhere',
      headers: { 'x-request-id': 'trace-abc.123' },
    });
    expect(response.statusCode).toBe(404);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(response.headers['x-request-id']).toBe('trace-abc.123');
    expect(response.json()).toMatchObject({ code: 'ROUTE_NOT_FOUND', requestId: 'trace-abc.123', status: 404 });
  });

  it('replaces an incoming request id that is not safe to log', async () => {
    const response = await stack.app.inject({
      method: 'GET',
      url: '/healthz',
      headers: { 'x-request-id': 'bad id\nwith newline' },
    });
    expect(response.headers['x-request-id']).toMatch(/^req_/);
  });
});

describe('API description', () => {
  it('serves OpenAPI 3.1 listing every route and a browsable reference', async () => {
    const document = (await stack.app.inject({ method: 'GET', url: '/openapi.json' })).json<OpenApiDocument>();
    expect(document.openapi).toBe('3.1.0');
    for (const route of [
      '/v1/tenants',
      '/v1/tenants/{tenantId}',
      '/v1/auth/token',
      '/v1/entities',
      '/v1/entities/{entityId}',
    ]) {
      expect(Object.keys(document.paths)).toContain(route);
    }
    const docs = await stack.app.inject({ method: 'GET', url: '/docs/' });
    expect(docs.statusCode).toBe(200);
    expect(docs.headers['content-type']).toMatch(/text\/html/);
  });

  it('refuses every secured route without credentials, with the right problem code', async () => {
    const document = (await stack.app.inject({ method: 'GET', url: '/openapi.json' })).json<OpenApiDocument>();
    let checked = 0;
    for (const [route, operations] of Object.entries(document.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        const scheme = Object.keys(operation.security?.[0] ?? {})[0];
        if (scheme === undefined) continue;
        const url = route.replaceAll(/\{[^}]+\}/g, 'x');
        const response = await stack.app.inject({
          method: method.toUpperCase() as 'GET',
          url,
          payload: method === 'get' ? undefined : {},
        });
        expect(response.statusCode, `${method} ${route}`).toBe(401);
        const expected = scheme === 'operatorKey' ? 'OPERATOR_KEY_INVALID' : 'AUTH_CREDENTIALS_MISSING';
        expect(response.json<{ code: string }>().code, `${method} ${route}`).toBe(expected);
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(5);
  });

  it('refuses a tenant token on operator routes', async () => {
    const response = await stack.app.inject({ method: 'GET', url: `/v1/tenants/${firm.id}`, headers: firm.auth });
    expect(response.statusCode).toBe(401);
    expect(response.json()).toMatchObject({ code: 'OPERATOR_KEY_INVALID' });
  });
});

describe('error catalogue', () => {
  it('is documented: docs/errors.md is what the catalogue renders to', async () => {
    expect(await fs.readFile(errorDocsPath, 'utf8')).toBe(renderErrorDocs());
  });
});

describe('readiness', () => {
  it('answers /readyz with 503 problem+json when the database is unreachable', async () => {
    const broken = await startTestStack();
    await broken.platform.runtimePool.end();
    const response = await broken.app.inject({ method: 'GET', url: '/readyz' });
    expect(response.statusCode).toBe(503);
    expect(response.json()).toMatchObject({ code: 'SERVICE_NOT_READY' });
    await broken.app.close();
    await broken.platform.ownerPool.end();
    await fs.rm(broken.config.home, { recursive: true, force: true });
  });
});
