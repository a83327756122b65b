import { assert } from '../platform/assert.ts';
import type { JobKind } from './jobs.types.ts';

/** The handlers a process knows, by job kind. A worker claims only the kinds it can run. */
export class JobRegistry {
  readonly #kinds = new Map<string, JobKind<unknown>>();

  register<Payload>(kind: JobKind<Payload>): this {
    assert(/^[a-z][a-z0-9_.-]{0,63}$/.test(kind.kind), `job kind name "${kind.kind}" is not allowed`);
    assert(!this.#kinds.has(kind.kind), `job kind "${kind.kind}" is registered twice`);
    this.#kinds.set(kind.kind, kind as JobKind<unknown>);
    return this;
  }

  get(kind: string): JobKind<unknown> | undefined {
    return this.#kinds.get(kind);
  }

  kinds(): string[] {
    return [...this.#kinds.keys()];
  }
}
