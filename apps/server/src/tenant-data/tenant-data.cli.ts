import { createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { parseArgs } from 'node:util';
import type { CliConnection, CliOutput } from '../metering/cli/operator-cli.ts';

/**
 * `countinghouse tenant tier-change|export|offboard|legal-hold|purge`: the tenant-data operator
 * API from a terminal, over HTTP like the other operator commands (metering/cli/operator-cli.ts).
 * `tier-change` follows the change to its end with a progress bar (rows copied of total);
 * `export --wait --out FILE` waits for the archive and downloads it.
 */
export const tenantDataCommands = ['tier-change', 'export', 'offboard', 'legal-hold', 'purge'] as const;
export type TenantDataCommand = (typeof tenantDataCommands)[number];

export const tenantDataUsage = `  countinghouse tenant tier-change <tenant-id> <tier> [--no-wait]
  countinghouse tenant export <tenant-id> [--wait] [--out <file.tar.gz>]
  countinghouse tenant offboard <tenant-id> [--force]
  countinghouse tenant legal-hold <tenant-id> set <reason> | clear
  countinghouse tenant purge <tenant-id>`;

export function isTenantDataCommand(value: string | undefined): value is TenantDataCommand {
  return (tenantDataCommands as readonly string[]).includes(value ?? '');
}

export interface CliOptions {
  pollMs?: number;
  /** Polls before giving up on a change or export (bounded wait). */
  pollsMax?: number;
  /** Draw the bar in place (a terminal) or one line per update. */
  inPlace?: boolean;
}

class CliFailure extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

interface Call {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  path: string;
  body?: unknown;
}

async function call<T>(connection: CliConnection, request: Call): Promise<T> {
  const headers: Record<string, string> = { authorization: `Bearer ${connection.operatorKey}` };
  if (request.body !== undefined) headers['content-type'] = 'application/json';
  let response: Response;
  try {
    response = await fetch(`${connection.baseUrl}${request.path}`, {
      method: request.method,
      headers,
      body: request.body === undefined ? undefined : JSON.stringify(request.body),
      signal: AbortSignal.timeout(60_000),
    });
  } catch (error) {
    throw new CliFailure(`cannot reach ${connection.baseUrl}: ${(error as Error).message}`, 1);
  }
  const text = await response.text();
  if (!response.ok) throw new CliFailure(`${response.status} ${text}`, 1);
  return JSON.parse(text) as T;
}

const barWidth = 30;

/** `[##########....................]  33%  copying  330,000 / 1,000,000 rows` */
export function progressBar(phase: string, rowsCopied: number, rowsTotal: number): string {
  const ratio = rowsTotal > 0 ? Math.min(rowsCopied / rowsTotal, 1) : phase === 'done' ? 1 : 0;
  const filled = Math.round(ratio * barWidth);
  const percent = String(Math.floor(ratio * 100)).padStart(3);
  const rows = `${rowsCopied.toLocaleString('en-US')} / ${rowsTotal.toLocaleString('en-US')} rows`;
  return `[${'#'.repeat(filled)}${'.'.repeat(barWidth - filled)}] ${percent}%  ${phase.padEnd(14)} ${rows}`;
}

interface ChangeView {
  id: string;
  status: string;
  phase: string;
  progress: { rowsCopied: number; rowsTotal: number };
  error: string | null;
}

async function tierChange(argv: string[], connection: CliConnection, output: CliOutput, options: CliOptions) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { 'no-wait': { type: 'boolean' } },
  });
  const [tenantId, tier] = positionals;
  if (!tenantId || !tier || positionals.length !== 2) throw new CliFailure('tier-change needs <tenant-id> <tier>', 2);
  const started = await call<ChangeView>(connection, {
    method: 'POST',
    path: `/v1/tenants/${tenantId}/tier-changes`,
    body: { tier },
  });
  if (values['no-wait']) {
    output.stdout(`${JSON.stringify(started, null, 2)}\n`);
    return 0;
  }
  let view = started;
  for (let poll = 0; poll < (options.pollsMax ?? 7_200); poll += 1) {
    const line = progressBar(view.phase, view.progress.rowsCopied, view.progress.rowsTotal);
    output.stdout(options.inPlace ? `\r${line}` : `${line}\n`);
    if (view.status === 'succeeded' || view.status === 'failed') break;
    await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 500));
    view = await call<ChangeView>(connection, {
      method: 'GET',
      path: `/v1/tenants/${tenantId}/tier-changes/${started.id}`,
    });
  }
  if (options.inPlace) output.stdout('\n');
  if (view.status === 'succeeded') {
    output.stdout(`tier change ${view.id}: succeeded, tenant ${tenantId} is on tier ${tier}\n`);
    return 0;
  }
  output.stderr(`countinghouse: tier change ${view.id} ${view.status}${view.error ? `: ${view.error}` : ''}\n`);
  return 1;
}

interface ExportView {
  id: string;
  status: string;
  downloadUrl: string | null;
  error: string | null;
}

async function download(connection: CliConnection, url: string, file: string): Promise<void> {
  const response = await fetch(`${connection.baseUrl}${url}`, {
    headers: { authorization: `Bearer ${connection.operatorKey}` },
  });
  if (!response.ok || response.body === null) throw new CliFailure(`${response.status} ${await response.text()}`, 1);
  await pipeline(Readable.fromWeb(response.body as WebReadableStream<Uint8Array>), createWriteStream(file));
}

async function exportTenant(argv: string[], connection: CliConnection, output: CliOutput, options: CliOptions) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { wait: { type: 'boolean' }, out: { type: 'string' } },
  });
  const [tenantId] = positionals;
  if (!tenantId || positionals.length !== 1) throw new CliFailure('export needs <tenant-id>', 2);
  let view = await call<ExportView>(connection, { method: 'POST', path: `/v1/tenants/${tenantId}/exports` });
  if (values.wait || values.out) {
    for (
      let poll = 0;
      poll < (options.pollsMax ?? 7_200) && !['succeeded', 'failed'].includes(view.status);
      poll += 1
    ) {
      await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 500));
      view = await call<ExportView>(connection, { method: 'GET', path: `/v1/tenants/${tenantId}/exports/${view.id}` });
    }
    if (view.status !== 'succeeded') throw new CliFailure(`export ${view.id} ${view.status}: ${view.error ?? ''}`, 1);
    if (values.out && view.downloadUrl) {
      await download(connection, view.downloadUrl, values.out);
      output.stderr(`export ${view.id} written to ${values.out}\n`);
    }
  }
  output.stdout(`${JSON.stringify(view, null, 2)}\n`);
  return 0;
}

async function simple(command: TenantDataCommand, argv: string[], connection: CliConnection, output: CliOutput) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { force: { type: 'boolean' } },
  });
  const [tenantId, action, ...reason] = positionals;
  if (!tenantId) throw new CliFailure(`${command} needs <tenant-id>`, 2);
  let request: Call;
  if (command === 'offboard') {
    request = { method: 'DELETE', path: `/v1/tenants/${tenantId}${values.force ? '?force=true' : ''}` };
  } else if (command === 'purge') {
    request = { method: 'POST', path: `/v1/tenants/${tenantId}/purge` };
  } else if (action === 'set' && reason.length > 0) {
    request = { method: 'PUT', path: `/v1/tenants/${tenantId}/legal-hold`, body: { reason: reason.join(' ') } };
  } else if (action === 'clear') {
    request = { method: 'DELETE', path: `/v1/tenants/${tenantId}/legal-hold` };
  } else {
    throw new CliFailure('legal-hold needs <tenant-id> set <reason> | clear', 2);
  }
  output.stdout(`${JSON.stringify(await call(connection, request), null, 2)}\n`);
  return 0;
}

/** Runs one command; returns the exit code (0 ok, 1 refused or failed, 2 bad usage). */
export async function runTenantDataCommand(
  command: TenantDataCommand,
  argv: string[],
  connection: CliConnection,
  output: CliOutput,
  options: CliOptions = {},
): Promise<number> {
  try {
    if (command === 'tier-change') return await tierChange(argv, connection, output, options);
    if (command === 'export') return await exportTenant(argv, connection, output, options);
    return await simple(command, argv, connection, output);
  } catch (error) {
    if (!(error instanceof CliFailure) && !(error instanceof TypeError)) throw error;
    const exitCode = error instanceof CliFailure ? error.exitCode : 2;
    output.stderr(`countinghouse: ${error.message}\n${exitCode === 2 ? `usage:\n${tenantDataUsage}\n` : ''}`);
    return exitCode;
  }
}
