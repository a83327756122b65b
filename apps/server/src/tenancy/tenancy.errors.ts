/** Errors of the control plane's tenant registry and operator API. */
export const tenancyErrors = {
  OPERATOR_KEY_INVALID: { status: 401, title: 'The operator key is missing or wrong.' },
  TENANT_UNKNOWN_TIER: { status: 400, title: 'The tier does not exist.' },
  TENANT_NAME_TAKEN: { status: 409, title: 'A tenant with this name already exists.' },
  TENANT_NOT_FOUND: { status: 404, title: 'The tenant does not exist.' },
  TENANT_REGULATORY_TIER_NOT_ALLOWED: { status: 400, title: 'The tier does not allow this regulatory tier.' },
  TENANT_NOT_ACTIVE: { status: 403, title: 'The tenant is not active.' },
  TENANT_NO_SILO_CLUSTER: { status: 409, title: 'The tier needs a silo cluster and none is configured.' },
  TENANT_SUSPENDED: { status: 403, title: 'The tenant is suspended.' },
  TENANT_STATUS_CONFLICT: { status: 409, title: 'The tenant is not in a state that allows this change.' },
  TENANT_PROVISIONING_FAILED: {
    status: 503,
    title: 'A provisioning step failed; the tenant is registered and its plan can be applied again.',
  },
} as const;
