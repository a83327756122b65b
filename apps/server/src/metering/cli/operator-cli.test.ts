import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenant, operatorKey, startTestStack, type TestStack, type TestTenant } from '../../../test/harness.ts';
import { type CliConnection, runOperatorCommand } from './operator-cli.ts';

/**
 * The operator CLI against a listening server: each command reaches its route with the
 * operator key and prints JSON or CSV; bad usage exits 2, a refused request exits 1.
 */
let stack: TestStack;
let firm: TestTenant;
let connection: CliConnection;
// The firm joins now, so this month is the first it is billed for.
const thisMonth = new Date().toISOString().slice(0, 7);

beforeAll(async () => {
  stack = await startTestStack();
  firm = await createTenant(stack.app, 'CLI Firm');
  const address = await stack.app.listen({ host: '127.0.0.1', port: 0 });
  connection = { baseUrl: address, operatorKey };
});

afterAll(async () => {
  await stack?.close();
});

async function run(command: Parameters<typeof runOperatorCommand>[0], argv: string[], using = connection) {
  let stdout = '';
  let stderr = '';
  const code = await runOperatorCommand(command, argv, using, {
    stdout: (text) => {
      stdout += text;
    },
    stderr: (text) => {
      stderr += text;
    },
  });
  return { code, stdout, stderr };
}

describe('countinghouse operator commands', () => {
  it('rotates the signing key: the JWKS then holds the new key beside the old', async () => {
    const rotated = await run('signing-keys', ['rotate']);
    expect(rotated.code).toBe(0);
    const { kid, published } = JSON.parse(rotated.stdout) as { kid: string; published: string[] };
    expect(published).toContain(kid);
    expect(published.length).toBeGreaterThan(1);
    expect((await run('signing-keys', ['spin'])).code).toBe(2);
  });

  it('prints a tenant’s usage as JSON', async () => {
    const result = await run('usage', [firm.id, '--from', '2026-01-01T00:00:00Z', '--to', '2026-02-01T00:00:00Z']);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ tenantId: firm.id, granularity: 'day', series: [] });
  });

  it('issues a month with --issue, and refuses a month that has not ended', async () => {
    const issued = await run('invoices', ['--month', '2018-06', '--issue']);
    expect(issued.code).toBe(0);
    expect(JSON.parse(issued.stdout)).toMatchObject({ month: '2018-06', items: [] });
    const open = await run('invoices', ['--month', '2999-01', '--issue']);
    expect(open.code).toBe(1);
    expect(open.stderr).toContain('METERING_MONTH_OPEN');
  });

  it('prints costs, invoices, margins and plan fit as CSV', async () => {
    const headers: Array<[Parameters<typeof runOperatorCommand>[0], string]> = [
      ['costs', 'month,tenant_id,tenant_name,tier,placement,pool,kind,amount_minor_USD'],
      [
        'invoices',
        'invoice_id,month,tenant_id,tenant_name,tier,currency,line,quantity,included,amount_minor,invoice_total_minor,status',
      ],
      ['margins', 'month,tenant_id,tenant_name,tier,revenue_minor,cost_minor,margin_minor'],
      [
        'plan-fit',
        'month,tenant_id,tenant_name,tier,revenue_minor,cost_minor,margin_minor,fit,recommended_tier,higher_tiers',
      ],
    ];
    for (const [command, header] of headers) {
      const result = await run(command, ['--month', thisMonth, '--csv']);
      expect(result.code, command).toBe(0);
      expect(result.stdout.split('\r\n')[0], command).toBe(header);
    }
    const invoices = await run('invoices', ['--month', thisMonth, '--csv']);
    expect(invoices.stdout).toContain(`,${firm.id},${firm.name},starter,USD,base_fee,1,0,9900,`);
  });

  it('prints one tenant’s invoice', async () => {
    const result = await run('invoices', ['--month', thisMonth, '--tenant', firm.id]);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ tenantId: firm.id, month: thisMonth, totalMinor: 9_900 });
  });

  it('exits 2 on bad usage and 1 when the server refuses', async () => {
    expect((await run('costs', [])).code).toBe(2);
    expect((await run('usage', [firm.id])).code).toBe(2);
    const refused = await run('costs', ['--month', thisMonth], { ...connection, operatorKey: 'wrong' });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('OPERATOR_KEY_INVALID');
    const unreachable = await run('costs', ['--month', thisMonth], { ...connection, baseUrl: 'http://127.0.0.1:9' });
    expect(unreachable.code).toBe(1);
  });
});
