import { parseArgs } from 'node:util';
import {
  type CliConnection,
  type CliOutput,
  CliUsageError,
  sendOperatorRequest,
} from '../../metering/cli/operator-cli.ts';

/**
 * `countinghouse tenant <subcommand>`: the tenant lifecycle from a terminal, over the operator
 * API of a running server (like the metering commands: COUNTINGHOUSE_URL and the operator
 * key). Each subcommand is one entry of `tenantSubcommands` — how to build its request and
 * how to print the answer — so lifecycle commands added later (tier changes, exports,
 * offboarding) are entries too. `--json` prints the server's JSON instead of the summary.
 */
export interface TenantRequest {
  method: 'GET' | 'POST' | 'DELETE';
  path: string;
  query?: Record<string, string | undefined>;
  body?: unknown;
}

export interface TenantSubcommand {
  usage: string;
  options?: Record<string, { type: 'string' | 'boolean' }>;
  build(values: Record<string, string | boolean | undefined>, positionals: string[]): TenantRequest;
  /** Human output; the JSON body when absent or with --json. */
  render?(body: unknown): string;
}

interface StepView {
  position: number;
  step: string;
  action: string;
  status?: string;
  outcome?: string | null;
  error?: string | null;
  durationMs?: number | null;
}

interface TenantView {
  id: string;
  name: string;
  tier: string;
  status: string;
  statusReason?: string | null;
  placement: { model: string; cluster: string; database: string };
  provisioning?: { steps: StepView[] };
}

function need(value: string | boolean | undefined, flag: string, command: string): string {
  if (typeof value !== 'string' || value === '') throw new CliUsageError(`tenant ${command} needs --${flag}`);
  return value;
}

function tenantId(positionals: string[], command: string): string {
  const id = positionals[0];
  if (!id) throw new CliUsageError(`tenant ${command} needs a tenant id (ten_…)`);
  return encodeURIComponent(id);
}

function placementText(placement: TenantView['placement']): string {
  return placement.model === 'pool'
    ? 'pool (shared database)'
    : `${placement.model}: database ${placement.database} on cluster ${placement.cluster}`;
}

function renderSteps(steps: readonly StepView[]): string {
  return steps
    .map((step) => {
      const mark =
        step.status === undefined ? '+' : step.status === 'done' ? '✓' : step.status === 'failed' ? '✗' : '·';
      const result = step.error ? `  FAILED: ${step.error}` : step.outcome ? `  (${step.outcome}` : '';
      const took =
        step.outcome && typeof step.durationMs === 'number' ? `, ${step.durationMs} ms)` : step.outcome ? ')' : '';
      return `  ${mark} ${String(step.position).padStart(2)}. ${step.step.padEnd(16)} ${step.action}${result}${took}`;
    })
    .join('\n');
}

function renderTenant(body: unknown): string {
  const tenant = body as TenantView;
  const lines = [
    `${tenant.id}  ${tenant.name}`,
    `  tier       ${tenant.tier}`,
    `  status     ${tenant.status}${tenant.statusReason ? ` (${tenant.statusReason})` : ''}`,
    `  placement  ${placementText(tenant.placement)}`,
  ];
  const steps = tenant.provisioning?.steps ?? [];
  if (steps.length > 0) lines.push('  provisioning:', renderSteps(steps));
  return `${lines.join('\n')}\n`;
}

function createBody(values: Record<string, string | boolean | undefined>, command: string) {
  const password = (values['admin-password'] as string | undefined) ?? process.env.COUNTINGHOUSE_ADMIN_PASSWORD;
  return {
    name: need(values.name, 'name', command),
    tier: need(values.tier, 'tier', command),
    admin: {
      email: need(values['admin-email'], 'admin-email', command),
      // The plan checks the password policy too; without one it checks a placeholder.
      password:
        password ?? (command === 'plan' ? 'placeholder-not-checked' : need(undefined, 'admin-password', command)),
    },
  };
}

const createOptions = {
  name: { type: 'string' },
  tier: { type: 'string' },
  'admin-email': { type: 'string' },
  'admin-password': { type: 'string' },
} as const;

export const tenantSubcommands: Record<string, TenantSubcommand> = {
  create: {
    usage:
      'tenant create --name <name> --tier <tier> --admin-email <email> [--admin-password <pw> | $COUNTINGHOUSE_ADMIN_PASSWORD]',
    options: createOptions,
    build: (values) => ({ method: 'POST', path: '/v1/tenants', body: createBody(values, 'create') }),
    render: renderTenant,
  },
  plan: {
    usage: 'tenant plan --name <name> --tier <tier> --admin-email <email>   (shows the steps, applies nothing)',
    options: createOptions,
    build: (values) => ({
      method: 'POST',
      path: '/v1/tenants',
      query: { dryRun: 'true' },
      body: createBody(values, 'plan'),
    }),
    render: (body) => {
      const plan = body as { tenant: Omit<TenantView, 'status' | 'id'>; steps: StepView[] };
      return `Plan for "${plan.tenant.name}" on tier ${plan.tenant.tier}, ${placementText(plan.tenant.placement)}:\n${renderSteps(plan.steps)}\n${plan.steps.length} steps to apply; nothing was changed.\n`;
    },
  },
  list: {
    usage: 'tenant list [--tier <tier>] [--status <status>] [--limit <n>] [--cursor <cursor>]',
    options: {
      tier: { type: 'string' },
      status: { type: 'string' },
      limit: { type: 'string' },
      cursor: { type: 'string' },
    },
    build: (values) => ({
      method: 'GET',
      path: '/v1/tenants',
      query: {
        tier: values.tier as string | undefined,
        status: values.status as string | undefined,
        limit: values.limit as string | undefined,
        cursor: values.cursor as string | undefined,
      },
    }),
    render: (body) => {
      const page = body as { items: TenantView[]; nextCursor: string | null };
      const rows = page.items.map(
        (tenant) =>
          `${tenant.id}  ${tenant.status.padEnd(12)} ${tenant.tier.padEnd(14)} ${tenant.placement.model.padEnd(6)} ${tenant.name}`,
      );
      const more = page.nextCursor ? `\nmore: --cursor ${page.nextCursor}` : '';
      return `${rows.join('\n')}${rows.length === 0 ? '(no tenants)' : ''}${more}\n`;
    },
  },
  show: {
    usage: 'tenant show <tenant-id>',
    build: (_values, positionals) => ({ method: 'GET', path: `/v1/tenants/${tenantId(positionals, 'show')}` }),
    render: renderTenant,
  },
  apply: {
    usage: "tenant apply <tenant-id>   (applies the tenant's provisioning plan again)",
    build: (_values, positionals) => ({
      method: 'POST',
      path: `/v1/tenants/${tenantId(positionals, 'apply')}/provisioning`,
    }),
    render: renderTenant,
  },
  suspend: {
    usage: 'tenant suspend <tenant-id> [--reason <text>]',
    options: { reason: { type: 'string' } },
    build: (values, positionals) => ({
      method: 'POST',
      path: `/v1/tenants/${tenantId(positionals, 'suspend')}/suspend`,
      body: typeof values.reason === 'string' ? { reason: values.reason } : {},
    }),
    render: renderTenant,
  },
  resume: {
    usage: 'tenant resume <tenant-id>',
    build: (_values, positionals) => ({
      method: 'POST',
      path: `/v1/tenants/${tenantId(positionals, 'resume')}/resume`,
    }),
    render: renderTenant,
  },
  hot: {
    usage: 'tenant hot [--hours <n>] [--share <percent>]   (tenants that a dedicated database would suit)',
    options: { hours: { type: 'string' }, share: { type: 'string' } },
    build: (values) => ({
      method: 'GET',
      path: '/v1/admin/hot-tenants',
      query: { hours: values.hours as string | undefined, sharePercent: values.share as string | undefined },
    }),
    render: (body) => {
      const report = body as {
        from: string;
        to: string;
        sharePercent: number;
        tenants: Array<{
          tenantId: string;
          name: string;
          tier: string;
          databaseSharePercent: number;
          requestSharePercent: number;
          suggestedTier: string | null;
          suggestedIsolation: string;
        }>;
      };
      const rows = report.tenants.map(
        (tenant) =>
          `${tenant.tenantId}  db ${tenant.databaseSharePercent.toFixed(2).padStart(6)} %  req ${tenant.requestSharePercent.toFixed(2).padStart(6)} %  ${tenant.tier} → ${tenant.suggestedTier ?? tenant.suggestedIsolation}  ${tenant.name}`,
      );
      return `Tenants with ≥ ${report.sharePercent} % of a shared cluster's load, ${report.from} – ${report.to}:\n${rows.length > 0 ? rows.join('\n') : '(none)'}\n`;
    },
  },
};

export const tenantUsage = `usage:\n${Object.values(tenantSubcommands)
  .map((command) => `  countinghouse ${command.usage}`)
  .join('\n')}`;

const requestTimeoutMs = 120_000;

/** Runs `countinghouse tenant …`; returns the exit code (0 ok, 1 the server refused, 2 bad usage). */
export async function runTenantCommand(argv: string[], connection: CliConnection, output: CliOutput): Promise<number> {
  const name = argv[0] ?? '';
  const subcommand = tenantSubcommands[name];
  let request: TenantRequest;
  let json = false;
  try {
    if (!subcommand || !Object.hasOwn(tenantSubcommands, name))
      throw new CliUsageError(`unknown tenant command "${name}"`);
    const { values, positionals } = parseArgs({
      args: argv.slice(1),
      allowPositionals: true,
      options: { ...(subcommand.options ?? {}), json: { type: 'boolean', default: false } },
    });
    json = values.json === true;
    request = subcommand.build(values, positionals);
  } catch (error) {
    output.stderr(`countinghouse: ${(error as Error).message}\n${tenantUsage}\n`);
    return 2;
  }
  const answer = await sendOperatorRequest(
    connection,
    {
      ...request,
      ...(request.body === undefined
        ? { body: undefined }
        : { body: { contentType: 'application/json', text: JSON.stringify(request.body) } }),
    },
    output,
    requestTimeoutMs,
  );
  if (answer === null) return 1;
  const body: unknown = JSON.parse(answer.text);
  output.stdout(json || !subcommand.render ? `${JSON.stringify(body, null, 2)}\n` : subcommand.render(body));
  return 0;
}
