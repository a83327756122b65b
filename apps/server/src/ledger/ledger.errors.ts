/** Errors of the accounting core: charts of accounts, journal, periods, sign-off, reports. */
export const ledgerErrors = {
  ACCOUNT_NOT_FOUND: { status: 404, title: 'The account does not exist in this entity.' },
  ACCOUNT_NUMBER_TAKEN: { status: 409, title: 'The entity already has an account with this number.' },
  ACCOUNT_PARENT_INVALID: {
    status: 422,
    title: 'The parent account must exist in the same entity, have the same type and not be a descendant.',
  },
  ACCOUNT_CHART_NOT_EMPTY: { status: 409, title: 'A template can only be applied to an entity without accounts.' },
  CHART_TEMPLATE_NOT_FOUND: { status: 404, title: 'No chart-of-accounts template has this id.' },
  LEDGER_IDEMPOTENCY_KEY_REQUIRED: { status: 400, title: 'Ledger postings need an Idempotency-Key header.' },
  LEDGER_ENTRY_TOO_FEW_LINES: { status: 422, title: 'A journal entry needs at least two lines.' },
  LEDGER_ENTRY_UNBALANCED: { status: 422, title: 'The debits and credits of the entry differ in some currency.' },
  LEDGER_CURRENCY_UNKNOWN: { status: 422, title: 'The currency is not an ISO 4217 code this ledger knows.' },
  LEDGER_CURRENCY_EXPONENT_MISMATCH: {
    status: 422,
    title: 'The exponent given does not match the ISO 4217 exponent of the currency.',
  },
  LEDGER_AMOUNT_OUT_OF_RANGE: {
    status: 422,
    title: 'Amounts are positive integers of minor units up to 2^63-1; beyond 2^53 send them as strings.',
  },
  LEDGER_DATE_INVALID: { status: 422, title: 'The date is not a valid calendar date (YYYY-MM-DD).' },
  LEDGER_ACCOUNT_UNKNOWN: { status: 422, title: 'A line names an account that does not exist in this entity.' },
  LEDGER_ACCOUNT_INACTIVE: { status: 422, title: 'A line names an inactive account.' },
  LEDGER_ENTITY_ARCHIVED: { status: 409, title: 'The entity is archived; its books take no postings.' },
  LEDGER_PERIOD_CLOSED: { status: 409, title: 'The entry is dated in a closed period.' },
  LEDGER_KIND_NOT_POSTABLE: {
    status: 422,
    title: 'Adjusting and reclassifying entries go through sign-off; closing entries come from year-end close.',
  },
  LEDGER_ENTRY_NOT_FOUND: { status: 404, title: 'The journal entry does not exist in this entity.' },
  LEDGER_ENTRY_ALREADY_REVERSED: { status: 409, title: 'The journal entry has already been reversed.' },
  LEDGER_ENTRY_NOT_REVERSIBLE: { status: 409, title: 'A reversal or closing entry cannot itself be reversed.' },
  LEDGER_APPEND_ONLY: { status: 409, title: 'Posted journal entries and lines cannot be changed or deleted.' },
  PERIOD_INVALID: { status: 404, title: 'The period is not a month of the form YYYY-MM.' },
  PERIOD_ALREADY_CLOSED: { status: 409, title: 'The period is already closed.' },
  PERIOD_NOT_CLOSED: { status: 409, title: 'The period is not closed.' },
  PERIOD_REOPEN_FORBIDDEN: { status: 403, title: 'Reopening a period needs the partner or owner role.' },
  PERIOD_NO_RETAINED_EARNINGS: {
    status: 422,
    title: 'Year-end close needs an active account with the retained_earnings role.',
  },
  PERIOD_NOTHING_TO_CLOSE: { status: 409, title: 'The fiscal year has no income or expense balance to close.' },
  ADJUSTMENT_NOT_FOUND: { status: 404, title: 'The adjustment does not exist in this entity.' },
  ADJUSTMENT_STATE_INVALID: { status: 409, title: 'The adjustment is not in a state that allows this step.' },
  ADJUSTMENT_SELF_APPROVAL: { status: 403, title: 'The approver of an adjustment must not be its preparer.' },
  ADJUSTMENT_APPROVAL_FORBIDDEN: {
    status: 403,
    title: 'Approving an adjustment needs the owner, partner or manager role.',
  },
  CLOSE_TASK_NOT_FOUND: { status: 404, title: 'The close checklist task does not exist.' },
  LEDGER_EXCHANGE_RATE_INVALID: {
    status: 422,
    title: 'An exchange rate is a positive decimal (base units per unit) with at most 12 fractional digits.',
  },
  LEDGER_EXCHANGE_RATE_MISSING: {
    status: 422,
    title: 'A line is in a foreign currency with no rate on the line and none on or before the entry date.',
  },
  LEDGER_ROUNDING_ACCOUNT_MISSING: {
    status: 422,
    title:
      'The entry needs a rounding line in the base currency, but the entity has no account with the rounding role.',
  },
  LEDGER_BASE_AMOUNT_INVALID: {
    status: 422,
    title: 'A base-currency amount does not follow from its line amount and exchange rate.',
  },
  LEDGER_RATE_CURRENCY_IS_BASE: { status: 422, title: 'The base currency has no exchange rate against itself.' },
  LEDGER_RATE_DUPLICATE: { status: 422, title: 'The import gives a rate for the same currency and date twice.' },
  LEDGER_RATES_CSV_INVALID: {
    status: 400,
    title: 'The exchange-rate file cannot be read: it needs a header row date,currency,rate and at least one rate.',
  },
  LEDGER_RATES_IMPORT_ROWS_INVALID: {
    status: 422,
    title: 'Some rows of the exchange-rate import are invalid (listed in `rows`); no rate was recorded.',
  },
  REPORT_RANGE_INVALID: { status: 400, title: 'The report dates are invalid or out of order.' },
  REPORT_PACK_NOT_FOUND: {
    status: 404,
    title: 'The report pack does not exist in this entity, or its job has not finished making it.',
  },
} as const;
