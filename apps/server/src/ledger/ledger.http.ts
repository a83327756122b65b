import { Type } from 'typebox';
import { AppError } from '../platform/errors.ts';
import { formatId, type IdKind, idPattern, parseId } from '../platform/ids.ts';
import { ledgerLimits } from './ledger.limits.ts';
import { type Account, accountTypes, type Entry, entryKinds, taxForms } from './ledger.types.ts';
import { exchangeRatePattern, jsonAmount } from './money.ts';

/** Schemas and renderers shared by the ledger's routes. */

export const EntityParams = Type.Object({ entityId: Type.String({ maxLength: 100 }) });

export const AmountSchema = Type.Union([Type.Integer(), Type.String({ pattern: '^-?[0-9]{1,40}$' })], {
  description: 'Integer minor units; a string of digits when beyond 2^53.',
});

export const DateSchema = Type.String({ pattern: '^[0-9]{4}-[0-9]{2}-[0-9]{2}$', description: 'YYYY-MM-DD' });

export const TaxLinesSchema = Type.Partial(
  Type.Object(Object.fromEntries(taxForms.map((form) => [form, Type.String({ minLength: 1, maxLength: 20 })]))),
  { additionalProperties: false },
);

export const AccountSchema = Type.Object(
  {
    id: Type.String({ pattern: idPattern('account') }),
    entityId: Type.String({ pattern: idPattern('entity') }),
    number: Type.String(),
    name: Type.String(),
    type: Type.Union(accountTypes.map((type) => Type.Literal(type))),
    normalBalance: Type.Union([Type.Literal('debit'), Type.Literal('credit')]),
    parentId: Type.Union([Type.String({ pattern: idPattern('account') }), Type.Null()]),
    active: Type.Boolean(),
    systemRole: Type.Union([Type.Literal('retained_earnings'), Type.Literal('rounding'), Type.Null()]),
    taxLines: Type.Record(Type.String(), Type.String()),
    balanceShards: Type.Integer(),
    createdAt: Type.String({ format: 'date-time' }),
  },
  { $id: 'Account' },
);

export const LineInputSchema = Type.Object(
  {
    accountId: Type.String({ maxLength: 100 }),
    side: Type.Union([Type.Literal('debit'), Type.Literal('credit')]),
    amountMinor: AmountSchema,
    currency: Type.String({ pattern: '^[A-Z]{3}$' }),
    exponent: Type.Integer({ minimum: 0, maximum: 18, description: 'ISO 4217 minor-unit digits of the currency.' }),
    memo: Type.Optional(Type.String({ maxLength: ledgerLimits.memoLengthMax })),
    exchangeRate: Type.Optional(
      Type.String({
        pattern: exchangeRatePattern.source,
        description:
          'Base-currency units per unit of this currency; without it, the entity rate on or before the entry date.',
      }),
    ),
  },
  { additionalProperties: false },
);

export const EntryInputSchema = Type.Object(
  {
    date: DateSchema,
    kind: Type.Optional(Type.Literal('standard')),
    memo: Type.Optional(Type.String({ maxLength: ledgerLimits.memoLengthMax })),
    lines: Type.Array(LineInputSchema, { maxItems: ledgerLimits.linesPerEntryMax }),
  },
  { additionalProperties: false },
);

export const EntrySchema = Type.Object(
  {
    id: Type.String({ pattern: idPattern('journalEntry') }),
    entityId: Type.String({ pattern: idPattern('entity') }),
    date: Type.String(),
    kind: Type.Union(entryKinds.map((kind) => Type.Literal(kind))),
    memo: Type.String(),
    reversesId: Type.Union([Type.String(), Type.Null()]),
    reversedById: Type.Union([Type.String(), Type.Null()]),
    createdBy: Type.String(),
    postedAt: Type.String({ format: 'date-time' }),
    lines: Type.Array(
      Type.Object({
        lineNo: Type.Integer(),
        accountId: Type.String(),
        side: Type.Union([Type.Literal('debit'), Type.Literal('credit')]),
        amountMinor: AmountSchema,
        currency: Type.String(),
        exponent: Type.Integer(),
        memo: Type.Union([Type.String(), Type.Null()]),
        exchangeRate: Type.Union([Type.String(), Type.Null()]),
        baseAmountMinor: Type.Union([AmountSchema, Type.Null()]),
        role: Type.Union([Type.Literal('regular'), Type.Literal('fx_rounding')]),
      }),
    ),
  },
  { $id: 'JournalEntry' },
);

export function renderAccount(account: Account) {
  return {
    id: formatId('account', account.id),
    entityId: formatId('entity', account.entityId),
    number: account.number,
    name: account.name,
    type: account.type,
    normalBalance: account.normalBalance,
    parentId: account.parentId === null ? null : formatId('account', account.parentId),
    active: account.active,
    systemRole: account.systemRole,
    taxLines: account.taxLines as Record<string, string>,
    balanceShards: account.balanceShards,
    createdAt: account.createdAt.toISOString(),
  };
}

export function renderEntry(entry: Entry) {
  return {
    id: formatId('journalEntry', entry.id),
    entityId: formatId('entity', entry.entityId),
    date: entry.date,
    kind: entry.kind,
    memo: entry.memo,
    reversesId: entry.reversesId === null ? null : formatId('journalEntry', entry.reversesId),
    reversedById: entry.reversedById === null ? null : formatId('journalEntry', entry.reversedById),
    createdBy: formatId('user', entry.createdBy),
    postedAt: entry.postedAt.toISOString(),
    lines: entry.lines.map((line) => ({
      lineNo: line.lineNo,
      accountId: formatId('account', line.accountId),
      side: line.side,
      amountMinor: jsonAmount(line.amountMinor),
      currency: line.currency,
      exponent: line.exponent,
      memo: line.memo,
      exchangeRate: line.exchangeRate,
      baseAmountMinor: line.baseAmountMinor === null ? null : jsonAmount(line.baseAmountMinor),
      role: line.role,
    })),
  };
}

/** The uuid of a path id, or the 404 of its kind: a malformed id and a missing one look alike. */
export function pathId(
  kind: IdKind,
  value: string,
  notFound:
    | 'ENTITY_NOT_FOUND'
    | 'ACCOUNT_NOT_FOUND'
    | 'LEDGER_ENTRY_NOT_FOUND'
    | 'ADJUSTMENT_NOT_FOUND'
    | 'CLOSE_TASK_NOT_FOUND'
    | 'REPORT_PACK_NOT_FOUND',
): string {
  const id = parseId(kind, value);
  if (id === null) throw new AppError(notFound);
  return id;
}

/** Opaque cursors: a JSON position, base64url-encoded, checked field by field on the way in. */
export function encodeCursor(position: object | null): string | null {
  return position === null ? null : Buffer.from(JSON.stringify(position)).toString('base64url');
}

export function decodeCursor<T>(
  cursor: string | undefined,
  check: (value: Record<string, unknown>) => T | null,
): T | null {
  if (cursor === undefined) return null;
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new AppError('PAGINATION_CURSOR_INVALID');
  }
  const checked = typeof value === 'object' && value !== null ? check(value as Record<string, unknown>) : null;
  if (checked === null) throw new AppError('PAGINATION_CURSOR_INVALID');
  return checked;
}

export const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const datePattern = /^[0-9]{4}-[0-9]{2}-[0-9]{2}$/;
