import type { Logger } from 'pino';
import { createJobWorker, type JobWorker } from '../jobs/jobs.worker.ts';
import type { Config } from './config.ts';
import { buildHttpApp, httpLimits } from './http/http-app.ts';
import type { App } from './http/http-types.ts';
import { openPlatform } from './platform.ts';

const purgeSweepIntervalMs = 10 * 60_000;

export interface RunningServer {
  app: App;
  url: string;
  stop(): Promise<void>;
}

/**
 * Starts the stack, listens, and stops cleanly on SIGINT/SIGTERM: stop accepting, let
 * in-flight requests finish (bounded), close pools, then stop the embedded database.
 */
export async function startServer(config: Config, log: Logger): Promise<RunningServer> {
  const platform = await openPlatform(config, log);
  let app: App;
  try {
    app = await buildHttpApp(platform, log);
    const warmed = await platform.warmConnections();
    log.info(warmed, 'database connections opened and warmed');
    await app.listen({ host: config.host, port: config.port });
  } catch (error) {
    await platform.close();
    throw error;
  }
  // Batch jobs run in-process by default; COUNTINGHOUSE_JOB_WORKERS=0 leaves them to `countinghouse worker`.
  let worker: JobWorker | null = null;
  if (config.jobWorkerSlots > 0) {
    worker = createJobWorker(platform, log, { slots: config.jobWorkerSlots, pollMs: config.jobPollMs });
    platform.jobs.onSubmitted(() => worker?.wake());
    worker.start();
  }
  // Offboarded tenants whose retention has run out are purged by this sweep (docs/offboarding.md).
  const purgeSweep = setInterval(() => {
    platform.tenantData.purgeDue().catch((error: unknown) => log.error({ err: error }, 'purge sweep failed'));
  }, purgeSweepIntervalMs);
  purgeSweep.unref();
  const url = `http://${config.host}:${config.port}`;
  if (platform.generatedOperatorKey) {
    process.stdout.write(
      `\nOperator key (shown once; stored with mode 0600 in ${config.home}/operator.key):\n  ${platform.generatedOperatorKey}\n\n`,
    );
  }
  process.stdout.write(`Countinghouse is listening on ${url}  (API reference: ${url}/docs)\n`);

  let stopping: Promise<void> | null = null;
  const stop = () => {
    stopping ??= (async () => {
      log.info('shutting down: draining in-flight requests');
      const forceClose = setTimeout(() => app.server.closeAllConnections(), httpLimits.shutdownGraceMs);
      await app.close();
      clearTimeout(forceClose);
      clearInterval(purgeSweep);
      await worker?.stop();
      await platform.close();
      log.info('shutdown complete');
    })();
    return stopping;
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      stop().then(
        () => process.exit(0),
        (error: unknown) => {
          log.error({ err: error }, 'shutdown failed');
          process.exit(1);
        },
      );
    });
  }
  return { app, url, stop };
}
