import { changedFields, recordAuditEvent } from '../../audit/audit.service.ts';
import { runIdempotent } from '../../platform/database/idempotency.ts';
import type { TenantContext, TenantDb, TenantScopes } from '../../platform/database/tenant-scope.ts';
import { AppError } from '../../platform/errors.ts';
import { formatId } from '../../platform/ids.ts';
import { type Books, loadBooks } from '../books.store.ts';
import { addMonths, fiscalYearStart, lastDayOfMonth } from '../dates.ts';
import { mapLedgerDatabaseErrors, postEntries } from '../journal/posting.ts';
import { holdsAny, reopenRoles } from '../ledger.roles.ts';
import type { Entry, LineInput } from '../ledger.types.ts';
import { exponentOf, jsonAmount } from '../money.ts';
import {
  addTask,
  type CloseTask,
  ensureChecklist,
  findTaskForUpdate,
  updateTask,
  userExists,
} from './close-checklist.store.ts';
import {
  ensureFiscalYear,
  excludePostings,
  incomeBalances,
  insertPeriodEvent,
  lockPeriod,
  type Period,
  type PeriodEvent,
  periodEvents,
  retainedEarningsAccount,
  setPeriodStatus,
} from './periods.store.ts';

export interface Actor {
  userId: string;
  roles: readonly string[];
}

interface Idempotent<Body> {
  status: number;
  body: Body;
  replayed: boolean;
}

/** `YYYY-MM` in a path to the month's first day. Errors: PERIOD_INVALID. */
export function parsePeriod(value: string): string {
  if (!/^[0-9]{4}-(0[1-9]|1[0-2])$/.test(value)) throw new AppError('PERIOD_INVALID');
  return `${value}-01`;
}

/**
 * Lines that bring every revenue and expense balance to zero against retained earnings,
 * one retained-earnings line per currency.
 */
function closingLines(
  balances: Array<{ accountId: string; currency: string; netMinor: bigint; baseNetMinor: bigint }>,
  retainedEarningsId: string,
): LineInput[] {
  // Each line takes the base amount that brings the account's base balance to zero too, signed
  // against its side, so the closing entry balances in the base currency without a rate.
  const lines: LineInput[] = [];
  const toRetained = new Map<string, { net: bigint; baseNet: bigint }>();
  for (const balance of balances) {
    const side = balance.netMinor > 0n ? 'credit' : 'debit';
    const amount = balance.netMinor > 0n ? balance.netMinor : -balance.netMinor;
    lines.push({
      accountId: formatId('account', balance.accountId),
      side,
      amountMinor: jsonAmount(amount),
      currency: balance.currency,
      exponent: exponentOf(balance.currency),
      baseAmountMinor: side === 'credit' ? balance.baseNetMinor : -balance.baseNetMinor,
    });
    const total = toRetained.get(balance.currency) ?? { net: 0n, baseNet: 0n };
    toRetained.set(balance.currency, {
      net: total.net + balance.netMinor,
      baseNet: total.baseNet + balance.baseNetMinor,
    });
  }
  for (const [currency, { net, baseNet }] of toRetained) {
    if (net === 0n) continue;
    const side = net > 0n ? 'debit' : 'credit';
    lines.push({
      accountId: formatId('account', retainedEarningsId),
      side,
      amountMinor: jsonAmount(net > 0n ? net : -net),
      currency,
      exponent: exponentOf(currency),
      baseAmountMinor: side === 'debit' ? baseNet : -baseNet,
    });
  }
  return lines;
}

/** Monthly periods, their close and reopen, year-end close, and the close checklist. */
export class PeriodsService {
  readonly #scopes: TenantScopes;

  constructor(scopes: TenantScopes) {
    this.#scopes = scopes;
  }

  /** The twelve periods of a fiscal year. Errors: ENTITY_NOT_FOUND. */
  async list(tenant: TenantContext, entityId: string, fiscalYear: number): Promise<Period[]> {
    return await this.#scopes.run(tenant, async (db) => {
      const books = await loadBooks(db, entityId);
      return await ensureFiscalYear(db, entityId, fiscalYear, books.fiscalYearEnd);
    });
  }

  /** One period with its close/reopen history. Errors: ENTITY_NOT_FOUND. */
  async get(
    tenant: TenantContext,
    entityId: string,
    month: string,
  ): Promise<{ period: Period; events: PeriodEvent[] }> {
    return await this.#scopes.run(tenant, async (db) => {
      const books = await loadBooks(db, entityId);
      const period = await lockPeriod(db, entityId, month, books.fiscalYearEnd);
      return { period, events: await periodEvents(db, entityId, month) };
    });
  }

  /**
   * Closes a period: from then on the database refuses postings dated in it. Waits for
   * in-flight postings of the entity first. Errors: ENTITY_NOT_FOUND, PERIOD_ALREADY_CLOSED.
   */
  async close<Body>(
    tenant: TenantContext,
    actor: Actor,
    entityId: string,
    month: string,
    idempotencyKey: string | undefined,
    render: (period: Period) => Body,
  ): Promise<Idempotent<Body>> {
    const route = `POST /v1/entities/${entityId}/periods/${month}/close`;
    return await this.#scopes.run(tenant, (db) =>
      runIdempotent(db, idempotencyKey, route, {}, async () => {
        const books = await loadBooks(db, entityId);
        await excludePostings(db, entityId);
        const period = await lockPeriod(db, entityId, month, books.fiscalYearEnd);
        if (period.status === 'closed') throw new AppError('PERIOD_ALREADY_CLOSED');
        const closed = await setPeriodStatus(db, entityId, month, 'closed', actor.userId);
        await insertPeriodEvent(db, entityId, month, 'close', actor.userId, null);
        await recordAuditEvent(db, {
          action: 'period.close',
          entityId,
          resource: { type: 'period', id: month },
          before: period,
          after: closed,
        });
        return { status: 200, body: render(closed) };
      }),
    );
  }

  /**
   * Reopens a closed period; needs the partner or owner role and a reason, both recorded.
   * Errors: ENTITY_NOT_FOUND, PERIOD_REOPEN_FORBIDDEN, PERIOD_NOT_CLOSED.
   */
  async reopen<Body>(
    tenant: TenantContext,
    actor: Actor,
    entityId: string,
    month: string,
    reason: string,
    idempotencyKey: string | undefined,
    render: (period: Period) => Body,
  ): Promise<Idempotent<Body>> {
    if (!holdsAny(actor.roles, reopenRoles)) throw new AppError('PERIOD_REOPEN_FORBIDDEN');
    const route = `POST /v1/entities/${entityId}/periods/${month}/reopen`;
    return await this.#scopes.run(tenant, (db) =>
      runIdempotent(db, idempotencyKey, route, { reason }, async () => {
        const books = await loadBooks(db, entityId);
        const period = await lockPeriod(db, entityId, month, books.fiscalYearEnd);
        if (period.status !== 'closed') throw new AppError('PERIOD_NOT_CLOSED');
        const reopened = await setPeriodStatus(db, entityId, month, 'open', actor.userId);
        await insertPeriodEvent(db, entityId, month, 'reopen', actor.userId, reason.trim());
        await recordAuditEvent(db, {
          action: 'period.reopen',
          entityId,
          resource: { type: 'period', id: month },
          before: period,
          after: reopened,
          summary: { reason: reason.trim().slice(0, 500) },
        });
        return { status: 200, body: render(reopened) };
      }),
    );
  }

  /**
   * Year-end close: posts one closing entry on the fiscal year's last day that brings every
   * revenue and expense account to zero against retained earnings.
   * Errors: ENTITY_NOT_FOUND, PERIOD_NO_RETAINED_EARNINGS, PERIOD_NOTHING_TO_CLOSE,
   * LEDGER_IDEMPOTENCY_KEY_REQUIRED, idempotency errors.
   */
  async closeFiscalYear<Body>(
    tenant: TenantContext,
    actor: Actor,
    entityId: string,
    fiscalYear: number,
    idempotencyKey: string | undefined,
    render: (entry: Entry) => Body,
  ): Promise<Idempotent<Body>> {
    if (idempotencyKey === undefined) throw new AppError('LEDGER_IDEMPOTENCY_KEY_REQUIRED');
    const route = `POST /v1/entities/${entityId}/fiscal-years/${fiscalYear}/close`;
    return await mapLedgerDatabaseErrors(() =>
      this.#scopes.run(tenant, (db) =>
        runIdempotent(db, idempotencyKey, route, {}, async () => {
          const books = await loadBooks(db, entityId);
          const entry = await this.#postClosingEntry(db, books, actor, fiscalYear);
          await recordAuditEvent(db, {
            action: 'period.year_end_close',
            entityId,
            resource: { type: 'fiscal_year', id: String(fiscalYear) },
            after: entry,
            summary: { closingEntryId: formatId('journalEntry', entry.id), lines: entry.lines.length },
          });
          return { status: 201, body: render(entry) };
        }),
      ),
    );
  }

  async #postClosingEntry(db: TenantDb, books: Books, actor: Actor, fiscalYear: number): Promise<Entry> {
    const retainedEarnings = await retainedEarningsAccount(db, books.entityId);
    if (retainedEarnings === null) throw new AppError('PERIOD_NO_RETAINED_EARNINGS');
    const firstMonth = fiscalYearStart(fiscalYear, books.fiscalYearEnd);
    const lastMonth = addMonths(firstMonth, 11);
    await ensureFiscalYear(db, books.entityId, fiscalYear, books.fiscalYearEnd);
    const balances = await incomeBalances(db, books.entityId, firstMonth, lastMonth);
    if (balances.length === 0) throw new AppError('PERIOD_NOTHING_TO_CLOSE');
    const [entry] = await postEntries(db, books, actor.userId, [
      {
        date: lastDayOfMonth(lastMonth),
        kind: 'closing',
        entryClass: 'closing',
        memo: `Year-end close of fiscal year ${fiscalYear}`,
        reversesId: null,
        lines: closingLines(balances, retainedEarnings),
        allowInactive: true,
      },
    ]);
    await insertPeriodEvent(db, books.entityId, lastMonth, 'year_end_close', actor.userId, null);
    if (!entry) throw new Error('posting the closing entry returned no entry');
    return entry;
  }

  /** The checklist of a period, rolled forward on first read. Errors: ENTITY_NOT_FOUND. */
  async checklist(tenant: TenantContext, entityId: string, month: string): Promise<CloseTask[]> {
    return await this.#scopes.run(tenant, async (db) => {
      await loadBooks(db, entityId);
      return await ensureChecklist(db, entityId, month);
    });
  }

  /** Errors: ENTITY_NOT_FOUND, REQUEST_VALIDATION_FAILED (unknown assignee). */
  async addTask(
    tenant: TenantContext,
    entityId: string,
    month: string,
    task: { title: string; assignee: string | null; dueOn: string | null },
  ): Promise<CloseTask> {
    return await this.#scopes.run(tenant, async (db) => {
      await loadBooks(db, entityId);
      await ensureChecklist(db, entityId, month);
      await checkAssignee(db, task.assignee);
      const added = await addTask(db, entityId, month, task);
      await recordAuditEvent(db, {
        action: 'close_task.create',
        entityId,
        resource: { type: 'close_task', id: formatId('closeTask', added.id) },
        after: added,
        summary: { month },
      });
      return added;
    });
  }

  /**
   * Changes a task; `status: 'done'` signs it off as the caller, `'open'` clears the sign-off.
   * Errors: ENTITY_NOT_FOUND, CLOSE_TASK_NOT_FOUND, REQUEST_VALIDATION_FAILED (unknown assignee).
   */
  async updateTask(
    tenant: TenantContext,
    actor: Actor,
    entityId: string,
    taskId: string,
    changes: { title?: string; assignee?: string | null; dueOn?: string | null; status?: 'open' | 'done' },
  ): Promise<CloseTask> {
    return await this.#scopes.run(tenant, async (db) => {
      await loadBooks(db, entityId);
      const task = await findTaskForUpdate(db, entityId, taskId);
      if (!task) throw new AppError('CLOSE_TASK_NOT_FOUND');
      if (changes.assignee !== undefined) await checkAssignee(db, changes.assignee);
      const status = changes.status ?? task.status;
      const signedOffBy = status === 'open' ? null : task.status === 'done' ? task.signedOffBy : actor.userId;
      const updated = await updateTask(db, entityId, {
        ...task,
        title: changes.title ?? task.title,
        assignee: changes.assignee === undefined ? task.assignee : changes.assignee,
        dueOn: changes.dueOn === undefined ? task.dueOn : changes.dueOn,
        status,
        signedOffBy,
      });
      await recordAuditEvent(db, {
        action: 'close_task.update',
        entityId,
        resource: { type: 'close_task', id: formatId('closeTask', taskId) },
        before: task,
        after: updated,
        summary: { fields: changedFields(changes), status },
      });
      return updated;
    });
  }
}

async function checkAssignee(db: TenantDb, assignee: string | null): Promise<void> {
  if (assignee !== null && !(await userExists(db, assignee))) {
    throw new AppError('REQUEST_VALIDATION_FAILED', 'The assignee is not a user of this firm.');
  }
}
