import type { FastifyRequest } from 'fastify';
import { describe, expect, it } from 'vitest';
import { AppError } from '../errors.ts';
import { problemTypeUri, toProblem } from './problem.ts';

const request = { url: '/v1/entities?limit=100', id: 'req_0' } as FastifyRequest;

describe('toProblem', () => {
  it('carries the error as RFC 9457 members with its extensions beside them', () => {
    const problem = toProblem(new AppError('RATE_LIMITED', undefined, { retryAfterSeconds: 3 }), request);
    expect(problem).toEqual({
      type: 'https://countinghouse.dev/problems/rate-limited',
      title: expect.any(String),
      status: 429,
      code: 'RATE_LIMITED',
      instance: '/v1/entities?limit=100',
      requestId: 'req_0',
      retryAfterSeconds: 3,
    });
    expect(problem.detail).toBeUndefined();
  });

  it('never lets an extension replace a standard member; the detail replaces an extension of that name', () => {
    const error = new AppError('RATE_LIMITED', 'slow down', { status: 200, code: 'NOPE', detail: 'other' });
    const problem = toProblem(error, request);
    expect(problem.status).toBe(429);
    expect(problem.code).toBe('RATE_LIMITED');
    expect(problem.detail).toBe('slow down');
    expect(toProblem(new AppError('RATE_LIMITED', undefined, { detail: 'kept' }), request).detail).toBe('kept');
  });

  it('names each code by the same type URI every time', () => {
    expect(problemTypeUri('QUOTA_EXHAUSTED')).toBe('https://countinghouse.dev/problems/quota-exhausted');
    expect(problemTypeUri('QUOTA_EXHAUSTED')).toBe(problemTypeUri('QUOTA_EXHAUSTED'));
  });
});
