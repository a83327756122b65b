import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  adminPassword,
  createTenant,
  operatorKey,
  startTestStack,
  type TestStack,
  type TestTenant,
} from '../../../test/harness.ts';

/**
 * Logs are structured JSON carrying the request id and, once authenticated, the tenant id —
 * and never a secret: the operator key, passwords and access tokens must not appear in any
 * line, whatever the route.
 */
const lines: string[] = [];
let stack: TestStack;
let firm: TestTenant;

beforeAll(async () => {
  stack = await startTestStack({ logDestination: { write: (line: string) => lines.push(line) } });
  firm = await createTenant(stack.app, 'Logging');
  await stack.app.inject({ method: 'POST', url: '/v1/entities', headers: firm.auth, payload: { name: 'Logged LLC' } });
  await stack.app.inject({ method: 'GET', url: '/v1/entities', headers: { authorization: 'Bearer not-a-token' } });
});

afterAll(async () => {
  await stack?.close();
});

describe('request logs', () => {
  it('are JSON lines with a request id, and carry the tenant id after authentication', () => {
    const records = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(records.length).toBeGreaterThan(4);
    const completed = records.filter((record) => record.msg === 'request completed');
    expect(completed.every((record) => typeof record.reqId === 'string')).toBe(true);
    const tenantUuid = firm.id.slice(4);
    const withTenant = records.filter((record) => String(record.tenantId ?? '').replaceAll('-', '') === tenantUuid);
    expect(withTenant.length).toBeGreaterThan(0);
  });

  it('never contain the operator key, a password or an access token', () => {
    const all = lines.join('\n');
    expect(all).not.toContain(operatorKey);
    expect(all).not.toContain(adminPassword);
    expect(all).not.toContain(firm.token);
    expect(all).not.toContain('not-a-token');
  });
});
