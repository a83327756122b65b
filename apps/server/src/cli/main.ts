import { ConfigError, loadConfig } from '../platform/config.ts';
import { createLogger } from '../platform/logger.ts';
import { startServer } from '../platform/server.ts';

/** `countinghouse start` runs the whole stack; more commands join as domains need them. */
const usage = 'usage: countinghouse start';

async function main(argv: string[]): Promise<void> {
  const command = argv[0] ?? 'start';
  if (command !== 'start') {
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
  const log = createLogger(config.logLevel);
  try {
    await startServer(config, log);
  } catch (error) {
    log.fatal({ err: error }, 'countinghouse could not start');
    process.exitCode = 1;
  }
}

await main(process.argv.slice(2));
