import {
  type CliConnection,
  type CliOutput,
  CliUsageError,
  isOperatorCommand,
  operatorUsage,
  resolveConnection,
  runOperatorCommand,
} from '../metering/cli/operator-cli.ts';
import { ConfigError, loadConfig } from '../platform/config.ts';
import { createLogger } from '../platform/logger.ts';
import { startServer } from '../platform/server.ts';
import { runTenantCommand, tenantUsage } from '../tenancy/cli/tenant-cli.ts';
import { isTenantDataCommand, runTenantDataCommand, tenantDataUsage } from '../tenant-data/tenant-data.cli.ts';
import { runDemo } from './demo.ts';
import { runWorker } from './worker.ts';

/**
 * `countinghouse start` runs the whole stack; `countinghouse worker` runs only job workers,
 * for scaling batch work out on an external PostgreSQL; operator commands call a running server.
 */
const usage = `usage: countinghouse start | countinghouse worker | countinghouse demo\n${operatorUsage}\n${tenantUsage}\n${tenantDataUsage}`;

/**
 * Runs an operator command against the running server it finds (COUNTINGHOUSE_URL, else the
 * local home): the exit code is the command's, or 2 for a configuration or usage error.
 */
async function againstServer(run: (connection: CliConnection, output: CliOutput) => Promise<number>): Promise<void> {
  try {
    const config = loadConfig();
    const connection = await resolveConnection(process.env, config.home, config.host, config.port);
    process.exitCode = await run(connection, {
      stdout: (text) => process.stdout.write(text),
      stderr: (text) => process.stderr.write(text),
    });
  } catch (error) {
    if (!(error instanceof ConfigError || error instanceof CliUsageError)) throw error;
    process.stderr.write(`countinghouse: ${error.message}\n`);
    process.exitCode = 2;
  }
}

/** Operator commands talk to a running server over HTTP (metering/cli/operator-cli.ts). */
async function operator(command: Parameters<typeof runOperatorCommand>[0], argv: string[]): Promise<void> {
  await againstServer((connection, output) => runOperatorCommand(command, argv, connection, output));
}

/** `countinghouse tenant tier-change|export|offboard|legal-hold|purge` (tenant-data/tenant-data.cli.ts). */
async function tenantData(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (!isTenantDataCommand(command)) return;
  await againstServer((connection, output) =>
    runTenantDataCommand(command, rest, connection, output, { inPlace: process.stdout.isTTY === true }),
  );
}

/** `countinghouse tenant create|list|show|plan|apply|suspend|resume|hot` (tenancy/cli/tenant-cli.ts). */
async function tenant(argv: string[]): Promise<void> {
  await againstServer((connection, output) => runTenantCommand(argv, connection, output));
}

async function main(argv: string[]): Promise<void> {
  const command = argv[0] ?? 'start';
  if (command === 'tenant' && isTenantDataCommand(argv[1])) {
    await tenantData(argv.slice(1));
    return;
  }
  if (command === 'tenant') {
    await tenant(argv.slice(1));
    return;
  }
  if (isOperatorCommand(command)) {
    await operator(command, argv.slice(1));
    return;
  }
  if (command !== 'start' && command !== 'worker' && command !== 'demo') {
    process.stderr.write(`${usage}\n`);
    process.exitCode = 2;
    return;
  }
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`countinghouse: ${error.message}\n`);
    process.exitCode = 2;
    return;
  }
  // The demo prints its own summary; request logs would bury it.
  const log = createLogger(command === 'demo' && config.logLevel === 'info' ? 'warn' : config.logLevel);
  if (command === 'worker' && config.databaseUrl === undefined) {
    process.stderr.write(
      'countinghouse: `worker` needs DATABASE_URL (the embedded database serves one process; use `start` there)\n',
    );
    process.exitCode = 2;
    return;
  }
  try {
    if (command === 'demo') await runDemo(config, log, (text) => process.stdout.write(text));
    else if (command === 'worker') await runWorker(config, log);
    else await startServer(config, log);
  } catch (error) {
    log.fatal({ err: error }, 'countinghouse could not start');
    process.exitCode = 1;
  }
}

await main(process.argv.slice(2));
