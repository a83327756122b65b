import { Type } from 'typebox';
import { idPattern } from '../../platform/ids.ts';
import { AmountSchema } from '../ledger.http.ts';
import { accountTypes, taxForms } from '../ledger.types.ts';

/**
 * The JSON bodies of the reports, exactly as reports.render.ts builds them: every object
 * closed, every amount integer minor units (a string beyond 2^53). They document the API and
 * drive the serializer; CSV, XLSX and PDF replies are files and bypass them.
 */
const closed = { additionalProperties: false } as const;

const Currency = Type.String({ pattern: '^[A-Z]{3}$' });
const Exponent = Type.Integer({ minimum: 0, maximum: 4 });
const DateText = Type.String({ pattern: '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' });
const NullableAmount = Type.Union([AmountSchema, Type.Null()]);

const AccountRef = Type.Object(
  {
    id: Type.String({ pattern: idPattern('account') }),
    number: Type.String(),
    name: Type.String(),
    type: Type.Union(accountTypes.map((type) => Type.Literal(type))),
  },
  closed,
);

const Column = Type.Object({ debitMinor: AmountSchema, creditMinor: AmountSchema }, closed);

const Checks = Type.Object(
  {
    balanced: Type.Boolean({ description: 'Debits equal credits; assets equal liabilities plus equity.' }),
    tiesToJournal: Type.Union([Type.Boolean(), Type.Null()], {
      description: 'Balances equal a GROUP BY over the journal lines; null unless verify=true.',
    }),
  },
  closed,
);

const Translation = Type.Union([
  Type.Null(),
  Type.Object(
    {
      baseCurrency: Currency,
      rates: Type.Array(Type.Object({ currency: Currency, date: DateText, rate: Type.String() }, closed)),
      remeasurement: Type.Array(
        Type.Object(
          {
            account: AccountRef,
            currency: Currency,
            exponent: Exponent,
            balanceMinor: AmountSchema,
            postedBaseMinor: AmountSchema,
            remeasuredBaseMinor: NullableAmount,
            differenceMinor: NullableAmount,
          },
          closed,
        ),
      ),
    },
    { ...closed, description: 'With view=base: the rates in force at the report date and the remeasurement.' },
  ),
]);

const EntityId = Type.String({ pattern: idPattern('entity') });

export const TrialBalanceBody = Type.Object(
  {
    entityId: EntityId,
    asOf: DateText,
    compareAsOf: DateText,
    basis: Type.Union([Type.Literal('pre-closing'), Type.Literal('post-closing')]),
    currencies: Type.Array(
      Type.Object(
        {
          currency: Currency,
          exponent: Exponent,
          rows: Type.Array(
            Type.Object(
              { account: AccountRef, unadjusted: Column, adjustments: Column, adjusted: Column, comparative: Column },
              closed,
            ),
          ),
          totals: Type.Object(
            { unadjusted: Column, adjustments: Column, adjusted: Column, comparative: Column },
            closed,
          ),
        },
        closed,
      ),
    ),
    taxLines: Type.Union([
      Type.Null(),
      Type.Array(
        Type.Object(
          {
            currency: Currency,
            form: Type.Union(taxForms.map((form) => Type.Literal(form))),
            lines: Type.Array(
              Type.Object(
                { line: Type.String(), label: Type.String(), debitMinor: AmountSchema, creditMinor: AmountSchema },
                closed,
              ),
            ),
          },
          closed,
        ),
      ),
    ]),
    translation: Translation,
    checks: Checks,
  },
  closed,
);

const StatementLine = Type.Object(
  { account: AccountRef, amountMinor: AmountSchema, comparativeMinor: AmountSchema },
  closed,
);
const Pair = Type.Object({ amountMinor: AmountSchema, comparativeMinor: AmountSchema }, closed);

export const IncomeStatementBody = Type.Object(
  {
    entityId: EntityId,
    from: DateText,
    to: DateText,
    compareFrom: DateText,
    compareTo: DateText,
    currencies: Type.Array(
      Type.Object(
        {
          currency: Currency,
          exponent: Exponent,
          revenue: Type.Array(StatementLine),
          totalRevenue: Pair,
          expenses: Type.Array(StatementLine),
          totalExpenses: Pair,
          netIncome: Pair,
        },
        closed,
      ),
    ),
    translation: Translation,
    checks: Checks,
  },
  closed,
);

export const BalanceSheetBody = Type.Object(
  {
    entityId: EntityId,
    asOf: DateText,
    compareAsOf: DateText,
    currencies: Type.Array(
      Type.Object(
        {
          currency: Currency,
          exponent: Exponent,
          assets: Type.Array(StatementLine),
          totalAssets: Pair,
          liabilities: Type.Array(StatementLine),
          totalLiabilities: Pair,
          equity: Type.Array(StatementLine),
          currentEarnings: Pair,
          totalEquity: Pair,
        },
        closed,
      ),
    ),
    translation: Translation,
    checks: Checks,
  },
  closed,
);

export const GeneralLedgerBody = Type.Object(
  {
    entityId: EntityId,
    account: AccountRef,
    currency: Currency,
    exponent: Exponent,
    from: DateText,
    to: DateText,
    openingBalanceMinor: AmountSchema,
    closingBalanceMinor: AmountSchema,
    items: Type.Array(
      Type.Object(
        {
          date: DateText,
          entryId: Type.String({ pattern: idPattern('journalEntry') }),
          lineNo: Type.Integer(),
          kind: Type.String(),
          memo: Type.String(),
          debitMinor: AmountSchema,
          creditMinor: AmountSchema,
          runningBalanceMinor: AmountSchema,
        },
        closed,
      ),
    ),
    nextCursor: Type.Union([Type.String(), Type.Null()]),
    checks: Checks,
  },
  closed,
);
