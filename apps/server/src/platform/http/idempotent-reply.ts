import type { FastifyReply } from 'fastify';

/**
 * The reply of an idempotent POST: the stored or fresh status and body, `idempotent-replayed:
 * true` when a retry was answered from the first call's record, and a Location when the POST
 * created something addressable.
 */
export function sendIdempotent<Body>(
  reply: FastifyReply,
  result: { status: number; body: Body; replayed: boolean },
  location?: (body: Body) => string,
): FastifyReply {
  if (result.replayed) reply.header('idempotent-replayed', 'true');
  if (location) reply.header('location', location(result.body));
  return reply.code(result.status).send(result.body);
}
