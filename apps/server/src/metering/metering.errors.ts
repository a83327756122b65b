/** Errors of metering, cost attribution and billing (operator API). */
export const meteringErrors = {
  METERING_RANGE_INVALID: { status: 400, title: 'The time range is invalid or too long for the granularity.' },
  METERING_MONTH_INVALID: { status: 400, title: 'The month must be YYYY-MM.' },
  METERING_MONTH_OPEN: { status: 409, title: 'The month has not ended yet, so its invoices cannot be issued.' },
  COST_IMPORT_INVALID: { status: 400, title: 'The Cost and Usage Report file is not valid.' },
  COST_IMPORT_MIXED_MONTHS: { status: 400, title: 'A Cost and Usage Report import must cover exactly one month.' },
} as const;
