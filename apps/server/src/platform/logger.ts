import pino, { type DestinationStream, type Logger } from 'pino';

/**
 * The one logger factory: structured JSON, with secrets redacted by path in case a caller
 * ever logs a header or a body. Request lines carry `reqId`; after authentication the auth
 * hook adds `tenantId` and `userId`.
 */
export const redactedPaths = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'password',
  '*.password',
  '*.*.password',
  'access_token',
  '*.access_token',
  'operatorKey',
];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = { level, redact: { paths: redactedPaths, censor: '[redacted]' } };
  return destination ? pino(options, destination) : pino(options);
}
