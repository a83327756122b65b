import { recordAuditEvent } from '../../audit/audit.service.ts';
import { runIdempotent } from '../../platform/database/idempotency.ts';
import type { TenantContext, TenantDb, TenantScopes } from '../../platform/database/tenant-scope.ts';
import { AppError } from '../../platform/errors.ts';
import { formatId } from '../../platform/ids.ts';
import { loadBooks } from '../books.store.ts';
import { checkEntries, type DraftEntry, mapLedgerDatabaseErrors, postEntries } from '../journal/posting.ts';
import { approverRoles, holdsAny } from '../ledger.roles.ts';
import type { LineInput } from '../ledger.types.ts';
import {
  type Adjustment,
  type AdjustmentStatus,
  type Comment,
  type DocumentReference,
  findAdjustment,
  insertAdjustment,
  insertComment,
  listAdjustments,
  listComments,
  saveAdjustmentState,
} from './adjustments.store.ts';

export interface Actor {
  userId: string;
  roles: readonly string[];
}

export interface NewAdjustment {
  date: string;
  kind: 'adjusting' | 'reclassifying';
  memo?: string | undefined;
  lines: LineInput[];
  documents?: DocumentReference[] | undefined;
  comment?: string | undefined;
}

export type AdjustmentAction = 'submit' | 'approve' | 'reject' | 'post';

export interface AdjustmentView {
  adjustment: Adjustment;
  comments: Comment[];
}

/** Which status each action starts from and leads to. */
const transitions: Record<AdjustmentAction, { from: readonly AdjustmentStatus[]; to: AdjustmentStatus }> = {
  submit: { from: ['draft'], to: 'submitted' },
  approve: { from: ['submitted'], to: 'approved' },
  reject: { from: ['submitted', 'approved'], to: 'draft' },
  post: { from: ['approved'], to: 'posted' },
};

function draftEntryOf(adjustment: Pick<Adjustment, 'date' | 'kind' | 'memo' | 'lines'>): DraftEntry {
  return {
    date: adjustment.date,
    kind: adjustment.kind,
    entryClass: 'adjustment',
    memo: adjustment.memo,
    reversesId: null,
    lines: adjustment.lines,
    allowInactive: false,
  };
}

/**
 * Sign-off of adjusting and reclassifying entries: draft → submitted → approved → posted,
 * with comments and supporting-document references, and an approver who is not the preparer
 * (checked here and by a constraint on the table).
 */
export class AdjustmentsService {
  readonly #scopes: TenantScopes;

  constructor(scopes: TenantScopes) {
    this.#scopes = scopes;
  }

  /**
   * Records a draft after checking it would post today (balance, accounts, currencies, dates).
   * Errors: ENTITY_NOT_FOUND and the checks of the journal's postEntries; idempotency errors.
   */
  async create<Body>(
    tenant: TenantContext,
    actor: Actor,
    entityId: string,
    input: NewAdjustment,
    idempotencyKey: string | undefined,
    render: (view: AdjustmentView) => Body,
  ) {
    return await this.#scopes.run(tenant, (db) =>
      runIdempotent(db, idempotencyKey, `POST /v1/entities/${entityId}/adjustments`, input, async () => {
        const books = await loadBooks(db, entityId);
        const memo = input.memo ?? '';
        await checkEntries(db, books, [draftEntryOf({ ...input, memo })]);
        const adjustment = await insertAdjustment(db, {
          entityId,
          date: input.date,
          kind: input.kind,
          memo,
          lines: input.lines,
          documents: input.documents ?? [],
          preparedBy: actor.userId,
        });
        if (input.comment !== undefined) await insertComment(db, entityId, adjustment.id, actor.userId, input.comment);
        await recordAuditEvent(db, {
          action: 'adjustment.create',
          entityId,
          resource: { type: 'adjustment', id: formatId('adjustment', adjustment.id) },
          after: adjustment,
          summary: { kind: adjustment.kind, date: adjustment.date },
        });
        return { status: 201, body: render(await this.#view(db, adjustment)) };
      }),
    );
  }

  /** Errors: ENTITY_NOT_FOUND, ADJUSTMENT_NOT_FOUND. */
  async get(tenant: TenantContext, entityId: string, id: string): Promise<AdjustmentView> {
    return await this.#scopes.run(tenant, async (db) => {
      await loadBooks(db, entityId);
      const adjustment = await findAdjustment(db, entityId, id, false);
      if (!adjustment) throw new AppError('ADJUSTMENT_NOT_FOUND');
      return await this.#view(db, adjustment);
    });
  }

  /** Errors: ENTITY_NOT_FOUND. */
  async list(tenant: TenantContext, entityId: string, status: AdjustmentStatus | null): Promise<Adjustment[]> {
    return await this.#scopes.run(tenant, async (db) => {
      await loadBooks(db, entityId);
      return await listAdjustments(db, entityId, status);
    });
  }

  /** Errors: ENTITY_NOT_FOUND, ADJUSTMENT_NOT_FOUND. */
  async comment(
    tenant: TenantContext,
    actor: Actor,
    entityId: string,
    id: string,
    body: string,
  ): Promise<AdjustmentView> {
    return await this.#scopes.run(tenant, async (db) => {
      await loadBooks(db, entityId);
      const adjustment = await findAdjustment(db, entityId, id, false);
      if (!adjustment) throw new AppError('ADJUSTMENT_NOT_FOUND');
      await insertComment(db, entityId, id, actor.userId, body);
      await recordAuditEvent(db, {
        action: 'adjustment.comment',
        entityId,
        resource: { type: 'adjustment', id: formatId('adjustment', id) },
        after: { body },
      });
      return await this.#view(db, adjustment);
    });
  }

  /**
   * Moves an adjustment one step, with an optional comment. Posting writes the journal and
   * needs an Idempotency-Key.
   * Errors: ENTITY_NOT_FOUND, ADJUSTMENT_NOT_FOUND, ADJUSTMENT_STATE_INVALID,
   * ADJUSTMENT_SELF_APPROVAL, ADJUSTMENT_APPROVAL_FORBIDDEN, LEDGER_IDEMPOTENCY_KEY_REQUIRED,
   * and on post the journal's checks (a period closed since approval, an account deactivated).
   */
  async act<Body>(
    tenant: TenantContext,
    actor: Actor,
    entityId: string,
    id: string,
    action: AdjustmentAction,
    comment: string | undefined,
    idempotencyKey: string | undefined,
    render: (view: AdjustmentView) => Body,
  ) {
    if (action === 'post' && idempotencyKey === undefined) throw new AppError('LEDGER_IDEMPOTENCY_KEY_REQUIRED');
    const route = `POST /v1/entities/${entityId}/adjustments/${id}/${action}`;
    return await mapLedgerDatabaseErrors(() =>
      this.#scopes.run(tenant, (db) =>
        runIdempotent(db, idempotencyKey, route, { comment: comment ?? null }, async () => {
          const books = await loadBooks(db, entityId);
          const adjustment = await findAdjustment(db, entityId, id, true);
          if (!adjustment) throw new AppError('ADJUSTMENT_NOT_FOUND');
          const transition = transitions[action];
          if (!transition.from.includes(adjustment.status)) {
            throw new AppError(
              'ADJUSTMENT_STATE_INVALID',
              `Cannot ${action} an adjustment that is ${adjustment.status}.`,
            );
          }
          let approvedBy = transition.to === 'draft' || transition.to === 'submitted' ? null : adjustment.approvedBy;
          let postedEntryId: string | null = null;
          if (action === 'approve') {
            if (actor.userId === adjustment.preparedBy) throw new AppError('ADJUSTMENT_SELF_APPROVAL');
            if (!holdsAny(actor.roles, approverRoles)) throw new AppError('ADJUSTMENT_APPROVAL_FORBIDDEN');
            approvedBy = actor.userId;
          }
          if (action === 'post') {
            const [posted] = await postEntries(db, books, actor.userId, [draftEntryOf(adjustment)]);
            postedEntryId = posted?.id ?? null;
          }
          const saved = await saveAdjustmentState(db, {
            entityId,
            id,
            status: transition.to,
            approvedBy,
            postedEntryId,
          });
          if (comment !== undefined) await insertComment(db, entityId, id, actor.userId, comment);
          await recordAuditEvent(db, {
            action: `adjustment.${action}`,
            entityId,
            resource: { type: 'adjustment', id: formatId('adjustment', id) },
            before: adjustment,
            after: saved,
            summary: {
              from: adjustment.status,
              to: saved.status,
              postedEntryId: postedEntryId === null ? null : formatId('journalEntry', postedEntryId),
            },
          });
          return { status: 200, body: render(await this.#view(db, saved)) };
        }),
      ),
    );
  }

  async #view(db: TenantDb, adjustment: Adjustment): Promise<AdjustmentView> {
    return { adjustment, comments: await listComments(db, adjustment.id) };
  }
}
