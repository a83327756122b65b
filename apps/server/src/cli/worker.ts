import type { Logger } from 'pino';
import { jobLimits } from '../jobs/jobs.limits.ts';
import { createJobWorker } from '../jobs/jobs.worker.ts';
import type { Config } from '../platform/config.ts';
import { openPlatform } from '../platform/platform.ts';

/**
 * `countinghouse worker`: job workers without the HTTP server, for scaling batch work out.
 * It migrates and checks the database like a server does, claims jobs until SIGINT/SIGTERM,
 * then stops claiming, lets running handlers stop (bounded), and exits.
 */
export async function runWorker(config: Config, log: Logger): Promise<void> {
  const platform = await openPlatform(config, log);
  const worker = createJobWorker(platform, log, {
    slots: config.jobWorkerSlots > 0 ? config.jobWorkerSlots : jobLimits.workerSlotsDefault,
    pollMs: config.jobPollMs,
  });
  worker.start();
  process.stdout.write(`Countinghouse job worker ${worker.id} is running\n`);
  let stopping: Promise<void> | null = null;
  const stop = () => {
    stopping ??= (async () => {
      await worker.stop();
      await platform.close();
    })();
    return stopping;
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      stop().then(
        () => process.exit(0),
        (error: unknown) => {
          log.error({ err: error }, 'worker shutdown failed');
          process.exit(1);
        },
      );
    });
  }
}
