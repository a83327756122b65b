import type { FastifyRequest } from 'fastify';
import type { AuditActor, RequestOrigin } from '../platform/database/tenant-scope.ts';

/** The origin of an HTTP request for the audit log: its actor, request id and source address. */
export function requestOrigin(request: FastifyRequest, actor: AuditActor): RequestOrigin {
  return { actor, requestId: request.id, sourceAddress: request.ip };
}
