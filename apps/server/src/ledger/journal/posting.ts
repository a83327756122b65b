import { randomInt } from 'node:crypto';
import type { TenantDb } from '../../platform/database/tenant-scope.ts';
import { AppError, isAppError } from '../../platform/errors.ts';
import { newUuid, parseId } from '../../platform/ids.ts';
import { type PostingAccount, postingAccounts } from '../accounts/accounts.store.ts';
import type { Books } from '../books.store.ts';
import { checkDate, monthOf } from '../dates.ts';
import { ledgerLimits } from '../ledger.limits.ts';
import type { Entry, EntryClass, EntryKind, Line, LineInput, PreparedEntry } from '../ledger.types.ts';
import { checkCurrency, parsePositiveAmount } from '../money.ts';
import { applyBalanceDeltas, balanceDeltas, closedMonths, insertEntries } from './journal.store.ts';

/**
 * The one path by which anything reaches the journal: plain entries, batches, reversals,
 * approved adjustments and year-end closing entries all come through `postEntries`, which
 * checks every rule in code and writes entries, lines and balances in the caller's
 * transaction; the database re-checks the balance when that transaction commits, and
 * `mapLedgerDatabaseErrors` (wrapped around the whole scope, commit included) turns its
 * refusals into the same codes.
 */

/** An entry as the posting paths describe it before checks. */
export interface DraftEntry {
  date: string;
  kind: EntryKind;
  entryClass: EntryClass;
  memo: string;
  reversesId: string | null;
  lines: LineInput[];
  /** Reversals and closing entries may touch accounts deactivated since. */
  allowInactive: boolean;
}

interface ParsedLine extends Omit<Line, 'accountId'> {
  accountId: string | null;
  publicAccountId: string;
}

function parseLines(lines: LineInput[], where: string): ParsedLine[] {
  if (lines.length < 2) {
    throw new AppError(
      'LEDGER_ENTRY_TOO_FEW_LINES',
      `${where} has ${lines.length} line(s); an entry needs two or more.`,
    );
  }
  return lines.map((line, index) => {
    const at = `${where}.lines[${index}]`;
    return {
      lineNo: index + 1,
      accountId: parseId('account', line.accountId),
      publicAccountId: line.accountId,
      side: line.side,
      amountMinor: parsePositiveAmount(line.amountMinor, `${at}.amountMinor`),
      currency: line.currency,
      exponent: checkCurrency(line.currency, line.exponent, `${at}.currency`),
      memo: line.memo ?? null,
    };
  });
}

/** Debits equal credits in every currency the entry uses. Errors: LEDGER_ENTRY_UNBALANCED. */
function checkBalanced(lines: Line[], where: string): void {
  const net = new Map<string, bigint>();
  for (const line of lines) {
    net.set(
      line.currency,
      (net.get(line.currency) ?? 0n) + (line.side === 'debit' ? line.amountMinor : -line.amountMinor),
    );
  }
  const off = [...net].filter(([, amount]) => amount !== 0n);
  if (off.length > 0) {
    const detail = off.map(([currency, amount]) => `${currency} debits exceed credits by ${amount}`).join('; ');
    throw new AppError('LEDGER_ENTRY_UNBALANCED', `${where}: ${detail} (minor units).`, {
      imbalances: off.map(([currency, amount]) => ({ currency, debitMinusCreditMinor: amount.toString() })),
    });
  }
}

function resolveLines(
  lines: ParsedLine[],
  accounts: Map<string, PostingAccount>,
  draft: DraftEntry,
  where: string,
): Line[] {
  return lines.map((line, index) => {
    const account = line.accountId === null ? undefined : accounts.get(line.accountId);
    if (!account || line.accountId === null) {
      throw new AppError('LEDGER_ACCOUNT_UNKNOWN', `${where}.lines[${index}]: ${line.publicAccountId}`);
    }
    if (!account.active && !draft.allowInactive) {
      throw new AppError('LEDGER_ACCOUNT_INACTIVE', `${where}.lines[${index}]: ${line.publicAccountId}`);
    }
    return { ...line, accountId: line.accountId };
  });
}

function whereOf(index: number, count: number): string {
  return count === 1 ? 'entry' : `entries[${index}]`;
}

/**
 * Checks entries without writing them: every rule that code can check before the insert.
 * Errors: LEDGER_ENTRY_TOO_FEW_LINES, LEDGER_ENTRY_UNBALANCED, LEDGER_AMOUNT_OUT_OF_RANGE,
 * LEDGER_CURRENCY_UNKNOWN, LEDGER_CURRENCY_EXPONENT_MISMATCH, LEDGER_DATE_INVALID,
 * LEDGER_ACCOUNT_UNKNOWN, LEDGER_ACCOUNT_INACTIVE, LEDGER_PERIOD_CLOSED, LEDGER_ENTITY_ARCHIVED.
 */
export async function prepareEntries(
  db: TenantDb,
  books: Books,
  drafts: DraftEntry[],
): Promise<{ prepared: PreparedEntry[]; accounts: Map<string, PostingAccount> }> {
  if (books.status !== 'active') throw new AppError('LEDGER_ENTITY_ARCHIVED');
  const parsed = drafts.map((draft, index) => {
    const where = whereOf(index, drafts.length);
    checkDate(draft.date, `${where}.date`);
    return parseLines(draft.lines, where);
  });
  const accountIds = [...new Set(parsed.flat().flatMap((line) => (line.accountId === null ? [] : [line.accountId])))];
  const accounts = await postingAccounts(db, books.entityId, accountIds);
  const prepared = drafts.map((draft, index): PreparedEntry => {
    const where = whereOf(index, drafts.length);
    const lines = resolveLines(parsed[index] ?? [], accounts, draft, where);
    checkBalanced(lines, where);
    return {
      id: newUuid(),
      date: draft.date,
      kind: draft.kind,
      entryClass: draft.entryClass,
      memo: draft.memo,
      reversesId: draft.reversesId,
      lines,
    };
  });
  await refuseClosedPeriods(db, books.entityId, prepared);
  return { prepared, accounts };
}

/**
 * Checks and posts entries atomically in the caller's transaction and returns them as stored.
 * Errors: as prepareEntries.
 */
export async function postEntries(db: TenantDb, books: Books, userId: string, drafts: DraftEntry[]): Promise<Entry[]> {
  const { prepared, accounts } = await prepareEntries(db, books, drafts);
  const postedAt = new Date();
  await insertEntries(db, books.entityId, userId, postedAt, prepared);
  const shards = new Map([...accounts.values()].map((account) => [account.id, randomInt(account.balanceShards)]));
  await applyBalanceDeltas(
    db,
    books.entityId,
    balanceDeltas(prepared, (accountId) => shards.get(accountId) ?? 0),
  );
  return prepared.map((entry) => ({
    ...entry,
    entityId: books.entityId,
    reversedById: null,
    createdBy: userId,
    postedAt,
  }));
}

async function refuseClosedPeriods(db: TenantDb, entityId: string, entries: PreparedEntry[]): Promise<void> {
  const months = [...new Set(entries.filter((entry) => entry.kind !== 'closing').map((entry) => monthOf(entry.date)))];
  if (months.length === 0) return;
  const closed = await closedMonths(db, entityId, months);
  const index = entries.findIndex((entry) => entry.kind !== 'closing' && closed.has(monthOf(entry.date)));
  const entry = entries[index];
  if (entry) {
    throw new AppError(
      'LEDGER_PERIOD_CLOSED',
      `${whereOf(index, entries.length)}: the period of ${entry.date} is closed.`,
    );
  }
}

export function checkBatchSize(drafts: DraftEntry[]): void {
  const lines = drafts.reduce((total, draft) => total + draft.lines.length, 0);
  if (drafts.length > ledgerLimits.entriesPerBatchMax || lines > ledgerLimits.linesPerBatchMax) {
    throw new AppError(
      'REQUEST_VALIDATION_FAILED',
      `A batch holds at most ${ledgerLimits.entriesPerBatchMax} entries and ${ledgerLimits.linesPerBatchMax} lines.`,
    );
  }
}

interface DatabaseError {
  code?: string;
  message: string;
  detail?: string;
  constraint?: string;
}

function isDatabaseError(error: unknown): error is DatabaseError {
  return error instanceof Error && typeof (error as DatabaseError).code === 'string';
}

/**
 * Turns the database's own refusals (raised by the ledger triggers with SQLSTATE class CH,
 * or by its constraints) into the same stable codes the code-level checks use.
 */
export async function mapLedgerDatabaseErrors<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (isAppError(error) || !isDatabaseError(error)) throw error;
    if (error.code === 'CH001') throw new AppError('LEDGER_PERIOD_CLOSED', error.detail);
    if (error.code === 'CH003') throw new AppError('LEDGER_APPEND_ONLY', error.detail);
    if (error.code === 'CH004') throw new AppError('LEDGER_ACCOUNT_UNKNOWN', error.detail);
    if (error.code === 'CH002') {
      const code =
        error.message === 'LEDGER_ENTRY_TOO_FEW_LINES' ? 'LEDGER_ENTRY_TOO_FEW_LINES' : 'LEDGER_ENTRY_UNBALANCED';
      throw new AppError(code, error.detail);
    }
    if (error.code === '23505' && error.constraint === 'journal_entries_reverses_key') {
      throw new AppError('LEDGER_ENTRY_ALREADY_REVERSED');
    }
    if (error.code === '22003')
      throw new AppError('LEDGER_AMOUNT_OUT_OF_RANGE', 'A balance would exceed 2^63-1 minor units.');
    throw error;
  }
}
