import type { FastifyError } from 'fastify';
import { AssertionError } from '../assert.ts';
import { AppError } from '../errors.ts';
import type { App } from './http-types.ts';
import { fromFrameworkError, isAppError, sendProblem } from './problem.ts';

/** Every error leaves as problem+json; unexpected ones are logged in full and shown generically. */
export function installErrorHandling(app: App): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const known = isAppError(error) ? error : fromFrameworkError(error);
    if (known) {
      if (known.status >= 500) request.log.error({ err: error }, known.code);
      return sendProblem(reply, known);
    }
    const level = error instanceof AssertionError ? 'fatal' : 'error';
    request.log[level]({ err: error }, 'unhandled error');
    return sendProblem(reply, new AppError('INTERNAL_ERROR'));
  });
  app.setNotFoundHandler((request, reply) =>
    sendProblem(reply, new AppError('ROUTE_NOT_FOUND', `${request.method} ${request.url}`)),
  );
}
