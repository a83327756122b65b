import { recordAuditEvent } from '../../audit/audit.service.ts';
import { assert } from '../../platform/assert.ts';
import { idempotencyKeyPattern, runIdempotent } from '../../platform/database/idempotency.ts';
import type { TenantContext, TenantDb, TenantScopes } from '../../platform/database/tenant-scope.ts';
import { AppError } from '../../platform/errors.ts';
import { formatId } from '../../platform/ids.ts';
import { loadBooks } from '../books.store.ts';
import { checkDate } from '../dates.ts';
import type { Entry, EntryInput, LineInput } from '../ledger.types.ts';
import { jsonAmount } from '../money.ts';
import { type EntryPosition, findEntry, listEntries } from './journal.store.ts';
import {
  checkBatchSize,
  type DraftEntry,
  mapLedgerDatabaseErrors,
  postEntries,
  postEntriesIdempotent,
  prepareDrafts,
} from './posting.ts';
import { PostingGroups, type SinglePost } from './posting-groups.ts';

export interface Idempotent<Body> {
  status: number;
  body: Body;
  replayed: boolean;
}

export interface ReversalInput {
  date?: string | undefined;
  memo?: string | undefined;
}

function draftOf(input: EntryInput): DraftEntry {
  if (input.kind !== undefined && input.kind !== 'standard') throw new AppError('LEDGER_KIND_NOT_POSTABLE');
  return {
    date: input.date,
    kind: 'standard',
    entryClass: 'unadjusted',
    memo: input.memo ?? '',
    reversesId: null,
    lines: input.lines,
    allowInactive: false,
  };
}

/** Lines that undo an entry: the same accounts and amounts on the opposite sides. */
function reversalLines(entry: Entry): LineInput[] {
  // The rounding line is not copied: the same rates give the same base amounts, so the
  // reversal books the mirror of the original's rounding difference itself.
  return entry.lines
    .filter((line) => line.role === 'regular')
    .map((line) => ({
      accountId: formatId('account', line.accountId),
      side: line.side === 'debit' ? 'credit' : 'debit',
      amountMinor: jsonAmount(line.amountMinor),
      currency: line.currency,
      exponent: line.exponent,
      memo: line.memo ?? undefined,
      exchangeRate: line.exchangeRate ?? undefined,
    }));
}

function requireKey(key: string | undefined): string {
  if (key === undefined) throw new AppError('LEDGER_IDEMPOTENCY_KEY_REQUIRED');
  return key;
}

/** One audit event per batch, not per entry: the digest covers every entry posted. */
async function recordBatchEvent(db: TenantDb, entityId: string, entries: Entry[]): Promise<void> {
  const [first, last] = [entries[0], entries.at(-1)];
  assert(first !== undefined && last !== undefined, 'a posted batch holds entries');
  await recordAuditEvent(db, {
    action: 'journal.post_batch',
    entityId,
    resource: { type: 'journal_entry', id: formatId('journalEntry', first.id) },
    after: entries,
    summary: {
      entries: entries.length,
      lines: entries.reduce((total, entry) => total + entry.lines.length, 0),
      lastEntryId: formatId('journalEntry', last.id),
    },
  });
}

/** The journal of a client entity: post, post in batches, reverse, read. */
export class JournalService {
  readonly #scopes: TenantScopes;
  readonly #groups: PostingGroups;

  constructor(scopes: TenantScopes) {
    this.#scopes = scopes;
    this.#groups = new PostingGroups(scopes, (post) => this.#postAlone(post));
  }

  /**
   * Posts one standard entry; concurrent posts by one user to one entity commit together
   * (posting-groups.ts), each with its own result. Errors: those of postEntries,
   * LEDGER_KIND_NOT_POSTABLE, LEDGER_IDEMPOTENCY_KEY_REQUIRED, IDEMPOTENCY_KEY_INVALID,
   * IDEMPOTENCY_KEY_REUSED, ENTITY_NOT_FOUND.
   */
  async post<Body>(
    tenant: TenantContext,
    userId: string,
    entityId: string,
    input: EntryInput,
    idempotencyKey: string | undefined,
    render: (entry: Entry) => Body,
  ): Promise<Idempotent<Body>> {
    const key = requireKey(idempotencyKey);
    if (!idempotencyKeyPattern.test(key)) throw new AppError('IDEMPOTENCY_KEY_INVALID');
    const draft = draftOf(input);
    // Refuse what needs no database before the post can join a group.
    prepareDrafts([draft]);
    const route = `POST /v1/entities/${entityId}/journal-entries`;
    return await this.#groups.post({ tenant, userId, entityId, key, route, request: input, draft, render });
  }

  /** One standard entry in a transaction of its own. */
  async #postAlone<Body>(post: SinglePost<Body>): Promise<Idempotent<Body>> {
    const { tenant, userId, entityId, key, route } = post;
    return await mapLedgerDatabaseErrors(() =>
      this.#scopes.run(tenant, async (db) => {
        let posted: Entry | undefined;
        const result = await postEntriesIdempotent(
          db,
          { entityId, userId, key, route, body: post.request },
          [post.draft],
          ([entry]) => {
            assert(entry !== undefined, 'posting one draft returns one entry');
            posted = entry;
            return post.render(entry);
          },
        );
        // A replay posted nothing now, so it records nothing.
        if (!result.replayed && posted !== undefined) {
          await recordAuditEvent(db, {
            action: 'journal.post',
            entityId,
            resource: { type: 'journal_entry', id: formatId('journalEntry', posted.id) },
            after: posted,
            summary: { date: posted.date, lines: posted.lines.length },
          });
        }
        return result;
      }),
    );
  }

  /**
   * Posts up to ledgerLimits.entriesPerBatchMax entries, all or none. Errors: as `post`,
   * each detail naming `entries[i]`; REQUEST_VALIDATION_FAILED when over the batch bounds.
   */
  async postBatch<Body>(
    tenant: TenantContext,
    userId: string,
    entityId: string,
    inputs: EntryInput[],
    idempotencyKey: string | undefined,
    render: (entries: Entry[]) => Body,
  ): Promise<Idempotent<Body>> {
    const key = requireKey(idempotencyKey);
    const drafts = inputs.map(draftOf);
    checkBatchSize(drafts);
    const route = `POST /v1/entities/${entityId}/journal-entries/batch`;
    return await mapLedgerDatabaseErrors(() =>
      this.#scopes.run(tenant, async (db) => {
        let posted: Entry[] = [];
        const result = await postEntriesIdempotent(
          db,
          { entityId, userId, key, route, body: inputs },
          drafts,
          (entries) => {
            posted = entries;
            return render(entries);
          },
        );
        if (!result.replayed) await recordBatchEvent(db, entityId, posted);
        return result;
      }),
    );
  }

  /**
   * Posts the reversal of an entry, linked to it, dated as given or on the original's date.
   * Errors: LEDGER_ENTRY_NOT_FOUND, LEDGER_ENTRY_ALREADY_REVERSED, LEDGER_ENTRY_NOT_REVERSIBLE,
   * LEDGER_PERIOD_CLOSED, LEDGER_DATE_INVALID, idempotency errors, ENTITY_NOT_FOUND.
   */
  async reverse<Body>(
    tenant: TenantContext,
    userId: string,
    entityId: string,
    entryId: string,
    input: ReversalInput,
    idempotencyKey: string | undefined,
    render: (entry: Entry) => Body,
  ): Promise<Idempotent<Body>> {
    const key = requireKey(idempotencyKey);
    const route = `POST /v1/entities/${entityId}/journal-entries/${entryId}/reverse`;
    return await this.#posting(tenant, key, route, input, async (db) => {
      const books = await loadBooks(db, entityId);
      const original = await findEntry(db, entityId, entryId);
      if (!original) throw new AppError('LEDGER_ENTRY_NOT_FOUND');
      if (original.kind === 'reversing' || original.kind === 'closing')
        throw new AppError('LEDGER_ENTRY_NOT_REVERSIBLE');
      if (original.reversedById !== null) throw new AppError('LEDGER_ENTRY_ALREADY_REVERSED');
      const date = input.date === undefined ? original.date : checkDate(input.date, 'date');
      const [entry] = await postEntries(db, books, userId, [
        {
          date,
          kind: 'reversing',
          entryClass: original.entryClass,
          memo: input.memo ?? `Reversal of ${formatId('journalEntry', original.id)}`,
          reversesId: original.id,
          lines: reversalLines(original),
          allowInactive: true,
        },
      ]);
      assert(entry !== undefined, 'posting one reversal returns one entry');
      await recordAuditEvent(db, {
        action: 'journal.reverse',
        entityId,
        resource: { type: 'journal_entry', id: formatId('journalEntry', original.id) },
        before: original,
        after: entry,
        summary: { reversalId: formatId('journalEntry', entry.id), date: entry.date },
      });
      return { status: 201, body: render(entry) };
    });
  }

  /** Errors: ENTITY_NOT_FOUND, LEDGER_ENTRY_NOT_FOUND. */
  async get(tenant: TenantContext, entityId: string, entryId: string): Promise<Entry> {
    return await this.#scopes.run(tenant, async (db) => {
      await loadBooks(db, entityId);
      const entry = await findEntry(db, entityId, entryId);
      if (!entry) throw new AppError('LEDGER_ENTRY_NOT_FOUND');
      return entry;
    });
  }

  /** Errors: ENTITY_NOT_FOUND, REPORT_RANGE_INVALID. */
  async list(
    tenant: TenantContext,
    entityId: string,
    range: { from: string | null; to: string | null },
    after: EntryPosition | null,
    limit: number,
  ) {
    if (range.from !== null && range.to !== null && range.from > range.to) throw new AppError('REPORT_RANGE_INVALID');
    return await this.#scopes.run(tenant, async (db) => {
      await loadBooks(db, entityId);
      return await listEntries(db, entityId, range, after, limit);
    });
  }

  async #posting<Body>(
    tenant: TenantContext,
    key: string,
    route: string,
    request: unknown,
    work: (db: Parameters<Parameters<TenantScopes['run']>[1]>[0]) => Promise<{ status: number; body: Body }>,
  ): Promise<Idempotent<Body>> {
    return await mapLedgerDatabaseErrors(() =>
      this.#scopes.run(tenant, (db) => runIdempotent(db, key, route, request, () => work(db))),
    );
  }
}
