import fs from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';

/**
 * `countinghouse usage|costs|invoices|margins|plan-fit|audit|operators`: the operator API from a terminal.
 * The commands talk to a running server over HTTP (COUNTINGHOUSE_URL, default
 * http://HOST:PORT) with the operator key (COUNTINGHOUSE_OPERATOR_KEY, else the key file in
 * COUNTINGHOUSE_HOME), print JSON, or CSV with --csv. They never open the database
 * themselves, so they work against any deployment and never compete with the server for
 * the embedded data folder.
 */
export const operatorCommands = [
  'usage',
  'costs',
  'invoices',
  'margins',
  'plan-fit',
  'audit',
  'operators',
  'signing-keys',
] as const;
export type OperatorCommand = (typeof operatorCommands)[number];

export const operatorUsage = `usage:
  countinghouse usage <tenant-id> --from <date-time> --to <date-time> [--granularity hour|day|month] [--csv]
  countinghouse costs --month YYYY-MM [--csv]
  countinghouse costs import <cur.csv>
  countinghouse invoices --month YYYY-MM [--tenant <tenant-id>] [--csv]
  countinghouse invoices --month YYYY-MM --issue
  countinghouse margins --month YYYY-MM [--csv]
  countinghouse plan-fit --month YYYY-MM [--csv]
  countinghouse audit verify --tenant <tenant-id>
  countinghouse operators create --name <name> | operators list | operators revoke <operator-id>
  countinghouse signing-keys rotate`;

export function isOperatorCommand(value: string): value is OperatorCommand {
  return (operatorCommands as readonly string[]).includes(value);
}

export interface CliConnection {
  baseUrl: string;
  operatorKey: string;
}

export interface CliOutput {
  stdout(text: string): void;
  stderr(text: string): void;
}

export class CliUsageError extends Error {
  override name = 'CliUsageError';
}

/** Where the server is and the operator key, from the environment or the local home folder. */
export async function resolveConnection(
  env: NodeJS.ProcessEnv,
  home: string,
  host: string,
  port: number,
): Promise<CliConnection> {
  const baseUrl = (env.COUNTINGHOUSE_URL || `http://${host}:${port}`).replace(/\/+$/, '');
  const fromEnv = env.COUNTINGHOUSE_OPERATOR_KEY;
  if (fromEnv) return { baseUrl, operatorKey: fromEnv };
  const fromFile = await fs.readFile(path.join(home, 'operator.key'), 'utf8').catch(() => null);
  if (fromFile === null)
    throw new CliUsageError('no operator key: set COUNTINGHOUSE_OPERATOR_KEY or COUNTINGHOUSE_HOME');
  return { baseUrl, operatorKey: fromFile.trim() };
}

/** One call of the operator API, as the CLIs build it. */
export interface OperatorRequest {
  method: 'GET' | 'POST' | 'DELETE';
  path: string;
  query?: Record<string, string | undefined>;
  body?: { contentType: 'text/csv' | 'application/json'; text: string };
}

/**
 * Sends one operator request with the operator key. Returns the answer, or null once it has
 * told the user why there is none (the server is unreachable, or refused with a problem).
 */
export async function sendOperatorRequest(
  connection: CliConnection,
  request: OperatorRequest,
  output: CliOutput,
  timeoutMs: number,
): Promise<{ response: Response; text: string } | null> {
  const url = new URL(`${connection.baseUrl}${request.path}`);
  for (const [name, value] of Object.entries(request.query ?? {})) {
    if (value !== undefined) url.searchParams.set(name, value);
  }
  const headers: Record<string, string> = { authorization: `Bearer ${connection.operatorKey}` };
  if (request.body !== undefined) headers['content-type'] = request.body.contentType;
  let response: Response;
  let text: string;
  try {
    response = await fetch(url, {
      method: request.method,
      headers,
      body: request.body?.text,
      signal: AbortSignal.timeout(timeoutMs),
    });
    text = await response.text();
  } catch (error) {
    output.stderr(`countinghouse: cannot reach ${connection.baseUrl}: ${(error as Error).message}\n`);
    return null;
  }
  if (!response.ok) {
    output.stderr(`countinghouse: ${response.status} ${text}\n`);
    return null;
  }
  return { response, text };
}

async function buildRequest(command: OperatorCommand, argv: string[]): Promise<OperatorRequest> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      from: { type: 'string' },
      to: { type: 'string' },
      granularity: { type: 'string' },
      month: { type: 'string' },
      tenant: { type: 'string' },
      csv: { type: 'boolean', default: false },
      issue: { type: 'boolean', default: false },
      name: { type: 'string' },
    },
  });
  const format = values.csv ? 'csv' : undefined;
  const month = () => {
    if (!values.month) throw new CliUsageError(`${command} needs --month YYYY-MM`);
    return values.month;
  };
  switch (command) {
    case 'usage': {
      const tenant = positionals[0];
      if (!tenant || !values.from || !values.to) throw new CliUsageError('usage needs <tenant-id> --from --to');
      const query = { from: values.from, to: values.to, granularity: values.granularity, format };
      return { method: 'GET', path: `/v1/admin/tenants/${encodeURIComponent(tenant)}/usage`, query };
    }
    case 'costs': {
      if (positionals[0] === 'import') {
        const file = positionals[1];
        if (!file) throw new CliUsageError('costs import needs a CUR file');
        const body = { contentType: 'text/csv' as const, text: await fs.readFile(file, 'utf8') };
        return { method: 'POST', path: '/v1/admin/cost-imports', query: { fileName: path.basename(file) }, body };
      }
      return { method: 'GET', path: '/v1/admin/costs', query: { month: month(), format } };
    }
    case 'invoices':
      if (values.issue) {
        const body = { contentType: 'application/json' as const, text: JSON.stringify({ month: month() }) };
        return { method: 'POST', path: '/v1/admin/invoices/issue', query: {}, body };
      }
      if (values.tenant) {
        return {
          method: 'GET',
          path: `/v1/admin/tenants/${encodeURIComponent(values.tenant)}/invoices/${month()}`,
          query: {},
        };
      }
      return { method: 'GET', path: '/v1/admin/invoices', query: { month: month(), format } };
    case 'margins':
      return { method: 'GET', path: '/v1/admin/margins', query: { month: month(), format } };
    case 'plan-fit':
      return { method: 'GET', path: '/v1/admin/plan-fit', query: { month: month(), format } };
    case 'audit':
      if (positionals[0] !== 'verify' || !values.tenant)
        throw new CliUsageError('audit verify needs --tenant <tenant-id>');
      return { method: 'GET', path: `/v1/admin/tenants/${encodeURIComponent(values.tenant)}/audit/verify`, query: {} };
    case 'operators':
      return operatorsRequest(positionals, values.name);
    case 'signing-keys':
      if (positionals[0] !== 'rotate') throw new CliUsageError('signing-keys rotate');
      return { method: 'POST', path: '/v1/admin/signing-keys/rotate', query: {} };
  }
}

/** `operators create --name <name>`, `operators list`, `operators revoke <operator-id>`. */
function operatorsRequest(positionals: string[], name: string | undefined): OperatorRequest {
  const [action, operatorId] = positionals;
  if (action === 'list') return { method: 'GET', path: '/v1/admin/operators', query: {} };
  if (action === 'create' && name) {
    const body = { contentType: 'application/json' as const, text: JSON.stringify({ name }) };
    return { method: 'POST', path: '/v1/admin/operators', query: {}, body };
  }
  if (action === 'revoke' && operatorId) {
    return { method: 'POST', path: `/v1/admin/operators/${encodeURIComponent(operatorId)}/revoke`, query: {} };
  }
  throw new CliUsageError('operators needs: create --name <name> | list | revoke <operator-id>');
}

/** A verification that found a broken link exits 1, so a scheduled check can alert on it. */
function exitCodeOf(command: OperatorCommand, body: unknown): number {
  const brokenChain = command === 'audit' && (body as { ok?: unknown } | null)?.ok === false;
  return brokenChain ? 1 : 0;
}

const requestTimeoutMs = 60_000;

/** Runs one command; returns the process exit code (0 ok, 1 the server refused, 2 bad usage). */
export async function runOperatorCommand(
  command: OperatorCommand,
  argv: string[],
  connection: CliConnection,
  output: CliOutput,
): Promise<number> {
  let request: OperatorRequest;
  try {
    request = await buildRequest(command, argv);
  } catch (error) {
    output.stderr(`countinghouse: ${(error as Error).message}\n${operatorUsage}\n`);
    return 2;
  }
  const answer = await sendOperatorRequest(connection, request, output, requestTimeoutMs);
  if (answer === null) return 1;
  const { response, text } = answer;
  const isJson = (response.headers.get('content-type') ?? '').includes('json');
  const body: unknown = isJson ? JSON.parse(text) : null;
  output.stdout(isJson ? `${JSON.stringify(body, null, 2)}\n` : text);
  return exitCodeOf(command, body);
}
