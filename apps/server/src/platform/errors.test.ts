import { describe, expect, it } from 'vitest';
import { AppError } from './errors.ts';

describe('AppError', () => {
  it('carries no stack for a refusal of the request (4xx), and leaves the stack limit as it was', () => {
    const limit = Error.stackTraceLimit;
    const refusal = new AppError('RATE_LIMITED', undefined, { retryAfterSeconds: 1 });
    expect(refusal.status).toBe(429);
    expect(refusal.stack).not.toMatch(/\n\s+at /);
    expect(Error.stackTraceLimit).toBe(limit);
    expect(new Error('plain').stack).toMatch(/\n\s+at /);
  });

  it('keeps its stack for a fault of ours (5xx), where the stack is what finds the fault', () => {
    const fault = new AppError('INTERNAL_ERROR');
    expect(fault.status).toBe(500);
    expect(fault.stack).toMatch(/\n\s+at /);
  });
});
