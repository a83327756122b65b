import { assert } from '../platform/assert.ts';

/** Bounds of the audit domain, checked against each other at load. */
export const auditLimits = {
  /** The canonical JSON of an event summary, in characters. */
  summaryLengthMax: 2_000,
  summaryKeysMax: 20,
  pageSizeDefault: 100,
  pageSizeMax: 1_000,
  /** Events read per statement while verifying a chain. */
  verifyPageSize: 2_000,
  /** Events one CSV/JSON Lines export returns; a larger log is exported in date ranges. */
  exportRowsMax: 1_000_000,
  exportPageSize: 2_000,
  /**
   * Hash chains per tenant (migration 0014): how many of one firm's audited writes can hold a
   * chain head at once, i.e. commit together. The column's check allows up to 64.
   */
  lanesPerTenant: 16,
} as const;

assert(auditLimits.pageSizeDefault <= auditLimits.pageSizeMax, 'default page fits the maximum');
assert(auditLimits.exportPageSize <= auditLimits.exportRowsMax, 'an export page fits the export');
assert(auditLimits.lanesPerTenant >= 1 && auditLimits.lanesPerTenant <= 64, 'lanes fit the column check');
