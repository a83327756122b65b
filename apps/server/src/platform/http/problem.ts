import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { AppError, type ErrorCode, errorCatalogue, isAppError } from '../errors.ts';

/** RFC 9457 problem details with our stable `code` and the request id for support. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  code: ErrorCode;
  detail?: string;
  instance: string;
  requestId: string;
  [extension: string]: unknown;
}

const typeUris = new Map<ErrorCode, string>();

export function problemTypeUri(code: ErrorCode): string {
  let uri = typeUris.get(code);
  if (uri === undefined) {
    uri = `https://countinghouse.dev/problems/${code.toLowerCase().replaceAll('_', '-')}`;
    typeUris.set(code, uri);
  }
  return uri;
}

/**
 * The problem document of an error. Built field by field: a refusal is the one answer a flood
 * gets, hundreds a second, and spreading the extensions in cost more than the rest of it.
 */
export function toProblem(error: AppError, request: FastifyRequest): Problem {
  const problem: Problem = {
    type: problemTypeUri(error.code),
    title: errorCatalogue[error.code].title,
    status: error.status,
    code: error.code,
    instance: request.url,
    requestId: request.id,
  };
  // Extensions never replace the standard members.
  for (const [name, value] of Object.entries(error.extensions)) if (!(name in problem)) problem[name] = value;
  if (error.detail !== undefined) problem.detail = error.detail;
  return problem;
}

export function sendProblem(reply: FastifyReply, error: AppError): FastifyReply {
  const problem = toProblem(error, reply.request);
  // A refusal that names when to come back (429, 503) says so in the standard header too.
  const retryAfterSeconds = error.extensions.retryAfterSeconds;
  if (typeof retryAfterSeconds === 'number') reply.header('retry-after', String(retryAfterSeconds));
  return reply.code(problem.status).type('application/problem+json').send(problem);
}

/** Maps Fastify's own errors (parsing, validation, limits) onto the catalogue. */
export function fromFrameworkError(error: FastifyError): AppError | null {
  if (error.validation) {
    const issues = error.validation.map((issue) => ({
      location: `${error.validationContext ?? 'body'}${issue.instancePath}`,
      message: issue.message ?? 'is invalid',
      ...(issue.keyword === 'additionalProperties'
        ? { unknownField: (issue.params as { additionalProperty?: string }).additionalProperty }
        : {}),
    }));
    const first = issues[0];
    return new AppError('REQUEST_VALIDATION_FAILED', first ? `${first.location} ${first.message}` : undefined, {
      errors: issues,
    });
  }
  switch (error.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new AppError('REQUEST_INVALID_JSON', error.message);
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new AppError('REQUEST_BODY_TOO_LARGE');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new AppError('REQUEST_UNSUPPORTED_MEDIA_TYPE');
    default:
      break;
  }
  // JSON.parse failures surface as SyntaxError with status 400.
  if (error instanceof SyntaxError || (error.statusCode === 400 && /JSON/i.test(error.message))) {
    return new AppError('REQUEST_INVALID_JSON', error.message);
  }
  return null;
}

export { isAppError };
