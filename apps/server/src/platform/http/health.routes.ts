import { Type } from 'typebox';
import { AppError } from '../errors.ts';
import type { App } from './http-types.ts';
import { problemResponses } from './schemas.ts';

const Health = Type.Object({ status: Type.Literal('ok') });

/** Liveness (the process answers) and readiness (the database answers). */
export async function healthRoutes(app: App, options: { isReady: () => Promise<boolean> }): Promise<void> {
  app.get(
    '/healthz',
    { schema: { summary: 'The process is up', tags: ['health'], response: { 200: Health } } },
    async () => ({
      status: 'ok' as const,
    }),
  );
  app.get(
    '/readyz',
    {
      schema: {
        summary: 'The database is reachable',
        tags: ['health'],
        response: { 200: Health, ...problemResponses },
      },
    },
    async () => {
      if (!(await options.isReady())) throw new AppError('SERVICE_NOT_READY', 'The database is not reachable.');
      return { status: 'ok' as const };
    },
  );
}
