/** Errors of exports, offboarding and tier changes (operator API) and of writes during a move. */
export const tenantDataErrors = {
  TENANT_EXPORT_NOT_FOUND: { status: 404, title: 'The export does not exist.' },
  TENANT_EXPORT_NOT_READY: { status: 409, title: 'The export has not finished.' },
  TENANT_EXPORT_REQUIRED: {
    status: 409,
    title: 'The tenant has no finished export; export it first or offboard with force.',
  },
  TENANT_LEGAL_HOLD: { status: 409, title: 'The tenant is under legal hold; its data cannot be purged.' },
  TENANT_ALREADY_OFFBOARDED: { status: 409, title: 'The tenant is already offboarded.' },
  TENANT_NOT_OFFBOARDED: { status: 409, title: 'The tenant must be offboarded before its data is purged.' },
  TENANT_PURGED: { status: 410, title: "The tenant's data has been purged." },
  TIER_CHANGE_NOT_FOUND: { status: 404, title: 'The tier change does not exist.' },
  TIER_CHANGE_SAME_TIER: { status: 409, title: 'The tenant is already on this tier.' },
  TIER_CHANGE_IN_PROGRESS: { status: 409, title: 'The tenant already has a tier change in progress.' },
  TIER_CHANGE_PLACEMENT_UNAVAILABLE: {
    status: 409,
    title: "No placement can serve the target tier's isolation model here.",
  },
  TENANT_MOVING: {
    status: 503,
    title: "The tenant's data is being moved; retry after the number of seconds in Retry-After.",
  },
} as const;
