/** Errors of the HTTP platform itself: request shape, idempotency, pagination, health. */
export const platformErrors = {
  REQUEST_INVALID_JSON: { status: 400, title: 'The request body is not valid JSON.' },
  REQUEST_VALIDATION_FAILED: { status: 400, title: 'The request does not match the schema.' },
  REQUEST_BODY_TOO_LARGE: { status: 413, title: 'The request body is larger than allowed.' },
  REQUEST_UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'The request body must be application/json.' },
  ROUTE_NOT_FOUND: { status: 404, title: 'No such route.' },
  IDEMPOTENCY_KEY_INVALID: {
    status: 400,
    title: 'The Idempotency-Key header must be 1 to 255 visible ASCII characters.',
  },
  IDEMPOTENCY_KEY_REUSED: { status: 409, title: 'The Idempotency-Key was already used with a different request.' },
  PAGINATION_CURSOR_INVALID: { status: 400, title: 'The pagination cursor is invalid.' },
  SERVICE_NOT_READY: { status: 503, title: 'The service is not ready.' },
  PLACEMENT_UNAVAILABLE: { status: 503, title: "The tenant's database cluster is not available." },
  DATABASE_POOLS_EXHAUSTED: { status: 503, title: 'Every dedicated-database pool is busy; retry shortly.' },
  DATABASE_BUSY: { status: 503, title: 'No database connection came free in time; retry shortly.' },
  INTERNAL_ERROR: { status: 500, title: 'An unexpected error occurred.' },
} as const;
