import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  adminPassword,
  dropTenantDatabases,
  operatorKey,
  startTestStack,
  type TestStack,
  uniqueName,
} from '../../../test/harness.ts';
import type { CliConnection } from '../../metering/cli/operator-cli.ts';
import { runTenantCommand } from './tenant-cli.ts';

/**
 * `countinghouse tenant …` against a listening server: each subcommand reaches its route with
 * the operator key and prints a summary (or JSON with --json); bad usage exits 2 and a refused
 * request exits 1 with the problem on stderr.
 */
let stack: TestStack;
let connection: CliConnection;
const created: string[] = [];

beforeAll(async () => {
  stack = await startTestStack();
  const address = await stack.app.listen({ host: '127.0.0.1', port: 0 });
  connection = { baseUrl: address, operatorKey };
});

afterAll(async () => {
  if (stack) await dropTenantDatabases(stack.platform, created);
  await stack?.close();
});

async function run(argv: string[], using = connection) {
  let stdout = '';
  let stderr = '';
  const code = await runTenantCommand(argv, using, {
    stdout: (text) => {
      stdout += text;
    },
    stderr: (text) => {
      stderr += text;
    },
  });
  return { code, stdout, stderr };
}

describe('countinghouse tenant', () => {
  it('plans, creates, shows, lists, suspends, resumes and re-applies a bridge tenant', async () => {
    const name = uniqueName('CLI Tenant');
    const identity = ['--name', name, '--tier', 'professional', '--admin-email', 'owner@cli.test'];

    const plan = await run(['plan', ...identity]);
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.stdout).toMatch(/bridge: database \S+_b_[0-9a-f]{32} on cluster shared/);
    expect(plan.stdout).toContain('8 steps to apply; nothing was changed.');

    const create = await run(['create', ...identity, '--admin-password', adminPassword, '--json']);
    expect(create.code, create.stderr).toBe(0);
    const tenant = JSON.parse(create.stdout) as { id: string; status: string };
    created.push(tenant.id);
    expect(tenant.status).toBe('active');

    const show = await run(['show', tenant.id]);
    expect(show.stdout).toContain(`${tenant.id}  ${name}`);
    expect(show.stdout).toMatch(/✓ {2}1\. registry/);
    expect(show.stdout).toMatch(/✓ {2}8\. activate/);

    const list = await run(['list', '--tier', 'professional', '--limit', '500']);
    expect(list.code).toBe(0);
    expect(list.stdout).toContain(tenant.id);

    const suspended = await run(['suspend', tenant.id, '--reason', 'audit']);
    expect(suspended.stdout).toContain('status     suspended (audit)');
    expect((await run(['resume', tenant.id])).stdout).toContain('status     active');
    expect((await run(['apply', tenant.id])).stdout).toMatch(/activate .*\(unchanged/);

    const hot = await run(['hot', '--hours', '1', '--share', '50']);
    expect(hot.code, hot.stderr).toBe(0);
    expect(hot.stdout).toMatch(/^Tenants with ≥ 50 %/);
  });

  it('exits 2 on bad usage and 1 when the server refuses', async () => {
    expect((await run(['frobnicate'])).code).toBe(2);
    expect((await run(['show'])).code).toBe(2);
    expect((await run(['create', '--name', 'x'])).code).toBe(2);
    const refused = await run(['show', 'ten_00000000000000000000000000000000']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('TENANT_NOT_FOUND');
    const wrongKey = await run(['list'], { ...connection, operatorKey: 'wrong' });
    expect(wrongKey.code).toBe(1);
    expect(wrongKey.stderr).toContain('OPERATOR_KEY_INVALID');
  });
});
