/**
 * Programmer errors: a broken invariant stops the request or job loudly.
 * Expected failures (bad input, missing rows) are AppErrors, never assertions.
 */
export class AssertionError extends Error {
  override name = 'AssertionError';
}

export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new AssertionError(message);
}
