import { recordAuditEvents } from '../../audit/audit.service.ts';
import { assert } from '../../platform/assert.ts';
import { requestHash } from '../../platform/database/idempotency.ts';
import type { TenantContext, TenantDb, TenantScopes } from '../../platform/database/tenant-scope.ts';
import { AppError } from '../../platform/errors.ts';
import { formatId } from '../../platform/ids.ts';
import type { Entry } from '../ledger.types.ts';
import { convertToBase } from './base-currency.ts';
import { callPostEntries, insertIdempotentResponses, lockIdempotencyKeys } from './journal.store.ts';
import { type DraftEntry, posted, prepareDrafts } from './posting.ts';

/**
 * Group commit for single postings. Concurrent posts of one entry each, by one user to one
 * client entity, share one transaction: one scope, one posting call for all their entries,
 * one write of their idempotency records and one commit, instead of one of each per post.
 * On this kind of machine a round trip to PostgreSQL costs the server more CPU than the
 * posting's own work, and concurrent posts to one entity otherwise queue on the same balance
 * rows, so grouping is what lets single posts scale with concurrency.
 *
 * Grouping is natural batching, without a timer: a post that finds no group running for its
 * key runs at once; posts that arrive while one runs wait and go together as the next group.
 * A lone post therefore costs what it did before. Each post keeps its own result: its own
 * Idempotency-Key semantics (replay, or IDEMPOTENCY_KEY_REUSED), its own audit event under
 * its own request origin, its own response. If a group fails for any reason (a closed
 * period, an inactive account, a lost connection), nothing of it was committed, or it was
 * and every key holds its stored response; each post is then run alone, so it gets exactly
 * the result or refusal it would have got alone.
 */

/** One single post waiting for its group. */
export interface SinglePost<Body> {
  tenant: TenantContext;
  userId: string;
  entityId: string;
  key: string;
  route: string;
  /** The request body, for the idempotency hash. */
  request: unknown;
  draft: DraftEntry;
  render: (entry: Entry) => Body;
}

export interface PostResult<Body> {
  status: number;
  body: Body;
  replayed: boolean;
}

interface Waiting<Body> {
  post: SinglePost<Body>;
  resolve: (result: PostResult<Body>) => void;
  reject: (error: unknown) => void;
}

export const postingGroupLimits = {
  /** Posts one transaction takes at most; the rest wait for the next group. */
  postsPerGroupMax: 64,
};

/** Posts group only with posts of the same firm, placement, entity and user. */
function groupKeyOf(post: SinglePost<unknown>): string {
  return JSON.stringify([post.tenant.tenantId, post.tenant.placement, post.entityId, post.userId]);
}

function mayGroup(post: SinglePost<unknown>): boolean {
  // The group's scope sees only the entity posted to, so a post whose user may not see it
  // runs alone and is refused there exactly as before.
  const scope = post.tenant.entityScope;
  return scope.kind === 'all' || scope.entityIds.includes(post.entityId);
}

export class PostingGroups {
  readonly #scopes: TenantScopes;
  /** Runs one post in its own transaction: the path a post takes alone or after a failed group. */
  readonly #postAlone: (post: SinglePost<unknown>) => Promise<PostResult<unknown>>;
  readonly #waiting = new Map<string, Waiting<unknown>[]>();
  readonly #running = new Set<string>();

  constructor(scopes: TenantScopes, postAlone: (post: SinglePost<unknown>) => Promise<PostResult<unknown>>) {
    this.#scopes = scopes;
    this.#postAlone = postAlone;
  }

  async post<Body>(post: SinglePost<Body>): Promise<PostResult<Body>> {
    const key = groupKeyOf(post);
    if (!mayGroup(post)) return (await this.#postAlone(post)) as PostResult<Body>;
    if (!this.#running.has(key)) {
      this.#running.add(key);
      try {
        return (await this.#postAlone(post)) as PostResult<Body>;
      } finally {
        this.#next(key);
      }
    }
    return await new Promise<PostResult<Body>>((resolve, reject) => {
      const queue = this.#waiting.get(key) ?? [];
      queue.push({ post, resolve, reject } as Waiting<unknown>);
      this.#waiting.set(key, queue);
    });
  }

  /** Starts the next group for the key, or marks the key idle. */
  #next(key: string): void {
    const queue = this.#waiting.get(key);
    if (!queue || queue.length === 0) {
      this.#waiting.delete(key);
      this.#running.delete(key);
      return;
    }
    const group = queue.splice(0, postingGroupLimits.postsPerGroupMax);
    if (queue.length === 0) this.#waiting.delete(key);
    void this.#runGroup(group).finally(() => this.#next(key));
  }

  async #runGroup(group: Waiting<unknown>[]): Promise<void> {
    if (group.length === 1) {
      const [only] = group;
      assert(only !== undefined, 'a group holds a post');
      await this.#postAlone(only.post).then(only.resolve, only.reject);
      return;
    }
    let results: (PostResult<unknown> | AppError)[];
    try {
      results = await this.#postTogether(group.map((waiting) => waiting.post));
    } catch {
      // Nothing of the group is visible unless it committed, in which case each key replays.
      await Promise.all(group.map((waiting) => this.#postAlone(waiting.post).then(waiting.resolve, waiting.reject)));
      return;
    }
    group.forEach((waiting, index) => {
      const result = results[index];
      assert(result !== undefined, 'every post of a group has a result');
      if (result instanceof AppError) waiting.reject(result);
      else waiting.resolve(result);
    });
  }

  async #postTogether(posts: SinglePost<unknown>[]): Promise<(PostResult<unknown> | AppError)[]> {
    const [first] = posts;
    assert(first !== undefined, 'a group holds posts');
    const scope: TenantContext = { ...first.tenant, entityScope: { kind: 'only', entityIds: [first.entityId] } };
    return await this.#scopes.run(scope, (db) => postGroup(db, posts));
  }
}

type Outcome =
  | { kind: 'post'; index: number; hash: string }
  | { kind: 'replay'; status: number; body: unknown }
  | { kind: 'same-as'; post: number }
  | { kind: 'refused'; error: AppError };

/**
 * Posts a group in the caller's transaction and returns each post's result, or its refusal
 * when its key was used for another request; throws on anything else, and each post then
 * runs alone.
 */
async function postGroup(db: TenantDb, posts: SinglePost<unknown>[]): Promise<(PostResult<unknown> | AppError)[]> {
  const [first] = posts;
  assert(first !== undefined, 'a group holds posts');
  const stored = await lockIdempotencyKeys(
    db,
    posts.map((post) => post.key),
  );
  // Each post in arrival order: a stored key replays or refuses, as does a key an earlier
  // post of this group uses; the others are posted.
  const claimed = new Map<string, { post: number; hash: string }>();
  const toPost: number[] = [];
  const outcomes = posts.map((post, index): Outcome => {
    const hash = requestHash(post.route, post.request);
    const previous = stored.get(post.key);
    if (previous) {
      return previous.requestHash === hash
        ? { kind: 'replay', status: previous.status, body: previous.body }
        : { kind: 'refused', error: new AppError('IDEMPOTENCY_KEY_REUSED') };
    }
    const earlier = claimed.get(post.key);
    if (earlier) {
      return earlier.hash === hash
        ? { kind: 'same-as', post: earlier.post }
        : { kind: 'refused', error: new AppError('IDEMPOTENCY_KEY_REUSED') };
    }
    claimed.set(post.key, { post: index, hash });
    toPost.push(index);
    return { kind: 'post', index, hash };
  });

  const postedAt = new Date();
  const prepared = await convertToBase(
    db,
    first.entityId,
    prepareDrafts(toPost.map((index) => (posts[index] as SinglePost<unknown>).draft)),
  );
  const entries = posted(prepared, first.entityId, first.userId, postedAt);
  const bodies = new Map<number, { entry: Entry; body: unknown }>();
  toPost.forEach((postIndex, entryIndex) => {
    const entry = entries[entryIndex];
    assert(entry !== undefined, 'every posted draft has its entry');
    bodies.set(postIndex, { entry, body: (posts[postIndex] as SinglePost<unknown>).render(entry) });
  });
  if (prepared.length > 0) {
    await callPostEntries(db, first.entityId, first.userId, postedAt, true, prepared);
    await insertIdempotentResponses(
      db,
      toPost.map((index) => {
        const post = posts[index] as SinglePost<unknown>;
        const outcome = outcomes[index] as Extract<Outcome, { kind: 'post' }>;
        return {
          key: post.key,
          route: post.route,
          requestHash: outcome.hash,
          status: 201,
          body: bodies.get(index)?.body,
        };
      }),
    );
    await recordAuditEvents(
      db,
      toPost.map((index) => {
        const post = posts[index] as SinglePost<unknown>;
        const entry = bodies.get(index)?.entry;
        assert(entry !== undefined, 'a posted entry has its body');
        return {
          action: 'journal.post',
          entityId: post.entityId,
          resource: { type: 'journal_entry', id: formatId('journalEntry', entry.id) },
          after: entry,
          summary: { date: entry.date, lines: entry.lines.length },
          ...(post.tenant.origin ? { origin: post.tenant.origin } : {}),
        };
      }),
    );
  }
  return outcomes.map((outcome): PostResult<unknown> | AppError => {
    if (outcome.kind === 'post') return { status: 201, body: bodies.get(outcome.index)?.body, replayed: false };
    // A second post under a key an earlier post of the group used replays that post.
    if (outcome.kind === 'same-as') return { status: 201, body: bodies.get(outcome.post)?.body, replayed: true };
    if (outcome.kind === 'replay') return { status: outcome.status, body: outcome.body, replayed: true };
    return outcome.error;
  });
}
