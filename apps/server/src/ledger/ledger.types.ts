/** Plain data of the accounting core. Ids are uuids; dates are `YYYY-MM-DD`; amounts bigint. */

export const accountTypes = ['asset', 'liability', 'equity', 'revenue', 'expense'] as const;
export type AccountType = (typeof accountTypes)[number];
export type Side = 'debit' | 'credit';
export const systemRoles = ['retained_earnings', 'rounding'] as const;
export type SystemRole = (typeof systemRoles)[number];

/** Tax forms a chart maps to: Form 1120, 1120-S, 1065 and Schedule C of Form 1040. */
export const taxForms = ['1120', '1120-S', '1065', 'schedule-c'] as const;
export type TaxForm = (typeof taxForms)[number];
export type TaxLines = Partial<Record<TaxForm, string>>;

export interface Account {
  id: string;
  entityId: string;
  number: string;
  name: string;
  type: AccountType;
  normalBalance: Side;
  parentId: string | null;
  active: boolean;
  systemRole: SystemRole | null;
  taxLines: TaxLines;
  balanceShards: number;
  createdAt: Date;
}

export interface NewAccount {
  number: string;
  name: string;
  type: AccountType;
  normalBalance?: Side | undefined;
  parentId?: string | null | undefined;
  systemRole?: SystemRole | undefined;
  taxLines?: TaxLines | undefined;
  balanceShards?: number | undefined;
}

export interface AccountChanges {
  name?: string | undefined;
  active?: boolean | undefined;
  parentId?: string | null | undefined;
  taxLines?: TaxLines | undefined;
  balanceShards?: number | undefined;
}

export const entryKinds = ['standard', 'adjusting', 'reclassifying', 'closing', 'reversing'] as const;
export type EntryKind = (typeof entryKinds)[number];
/** The trial-balance column an entry lands in. */
export type EntryClass = 'unadjusted' | 'adjustment' | 'closing';

export function classOfKind(kind: Exclude<EntryKind, 'reversing'>): EntryClass {
  if (kind === 'standard') return 'unadjusted';
  if (kind === 'closing') return 'closing';
  return 'adjustment';
}

/** A line as a client sends it: amounts not yet parsed. */
export interface LineInput {
  accountId: string;
  side: Side;
  amountMinor: number | string;
  currency: string;
  exponent: number;
  memo?: string | undefined;
  /** Base-currency units per unit of `currency` (a decimal string); else the entity's rate table. */
  exchangeRate?: string | undefined;
  /** Internal (closing entries): the base amount taken from balances instead of a rate. */
  baseAmountMinor?: bigint | undefined;
}

export interface EntryInput {
  date: string;
  kind?: 'standard' | undefined;
  memo?: string | undefined;
  lines: LineInput[];
}

/** `fx_rounding`: the zero-amount base-currency line that books an entry's rounding difference. */
export type LineRole = 'regular' | 'fx_rounding';

/** A checked line: account known, amount exact, converted to the entity's base currency. */
export interface Line {
  lineNo: number;
  accountId: string;
  side: Side;
  amountMinor: bigint;
  currency: string;
  exponent: number;
  memo: string | null;
  /** The rate used (decimal string); null only for closing lines and lines from before rates. */
  exchangeRate: string | null;
  /** Null only on foreign-currency lines posted before the ledger kept base amounts. */
  baseAmountMinor: bigint | null;
  role: LineRole;
}

export interface Entry {
  id: string;
  entityId: string;
  date: string;
  kind: EntryKind;
  entryClass: EntryClass;
  memo: string;
  reversesId: string | null;
  reversedById: string | null;
  createdBy: string;
  postedAt: Date;
  lines: Line[];
}

/** An entry checked and ready to insert (ids assigned). */
export interface PreparedEntry {
  id: string;
  date: string;
  kind: EntryKind;
  entryClass: EntryClass;
  memo: string;
  reversesId: string | null;
  lines: Line[];
}

/** A prepared entry on its way to the posting function, with its one posting option. */
export interface PostingEntry extends PreparedEntry {
  /** Reversals and closing entries may touch accounts deactivated since. */
  allowInactive: boolean;
}
