/** Errors of the limits domain: usage plans, bulkheads and load shedding. */
export const limitsErrors = {
  RATE_LIMITED: { status: 429, title: 'Too many requests: the rate limit of the usage plan is exceeded.' },
  QUOTA_EXHAUSTED: { status: 429, title: 'The request quota of the usage plan is used up for this period.' },
  TENANT_CONCURRENCY_LIMITED: { status: 429, title: 'Too many requests of this tenant are in flight at once.' },
  DATABASE_CONNECTIONS_BUSY: {
    status: 503,
    title: 'All database connections this tenant may hold are busy; retry shortly.',
  },
  SERVICE_OVERLOADED: { status: 503, title: 'The service is overloaded; the request was shed. Retry later.' },
  PLAN_OVERRIDES_INVALID: { status: 400, title: 'The plan overrides do not give a valid plan.' },
} as const;
