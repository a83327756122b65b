import { createHash, timingSafeEqual } from 'node:crypto';

/** The operator's bearer key, compared in constant time through fixed-length digests. */
export class OperatorKey {
  readonly #digest: Buffer;

  constructor(key: string) {
    this.#digest = createHash('sha256').update(key).digest();
  }

  matches(candidate: string): boolean {
    return timingSafeEqual(this.#digest, createHash('sha256').update(candidate).digest());
  }
}
