/** Bounds of the tenant registry and lifecycle, kept together (STYLE.md: limits on everything). */
export const tenancyLimits = {
  // Registry lookups happen on every request; a short cache keeps them off the database while
  // a suspension made on another instance still takes effect within this many milliseconds
  // (on the instance that suspends, at once).
  directoryCacheTtlMs: 5_000,
  directoryCacheEntriesMax: 10_000,
  /** Tenants per page of GET /v1/tenants. */
  listPageDefault: 50,
  listPageMax: 500,
  /** A suspension's reason. */
  statusReasonLengthMax: 500,
  /** Hot-tenant report: window and the share of the shared cluster's load that flags a tenant. */
  hotWindowHoursDefault: 24,
  hotWindowHoursMax: 24 * 31,
  hotSharePercentDefault: 20,
  hotTenantsMax: 100,
} as const;
