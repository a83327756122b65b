/**
 * The one error catalogue. Every expected failure has a stable code, an HTTP status and a
 * public title. Codes are never reused or renamed; `docs/errors.md` is checked against this
 * list by a test so the documentation cannot drift.
 */
export const errorCatalogue = {
  REQUEST_INVALID_JSON: { status: 400, title: 'The request body is not valid JSON.' },
  REQUEST_VALIDATION_FAILED: { status: 400, title: 'The request does not match the schema.' },
  REQUEST_BODY_TOO_LARGE: { status: 413, title: 'The request body is larger than allowed.' },
  REQUEST_UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    title: 'The request body must be application/json.',
  },
  ROUTE_NOT_FOUND: { status: 404, title: 'No such route.' },
  IDEMPOTENCY_KEY_INVALID: {
    status: 400,
    title: 'The Idempotency-Key header must be 1 to 255 visible ASCII characters.',
  },
  IDEMPOTENCY_KEY_REUSED: {
    status: 409,
    title: 'The Idempotency-Key was already used with a different request.',
  },
  AUTH_CREDENTIALS_MISSING: { status: 401, title: 'A bearer token is required.' },
  AUTH_TOKEN_INVALID: { status: 401, title: 'The bearer token is invalid or expired.' },
  AUTH_LOGIN_FAILED: { status: 401, title: 'The tenant, email or password is wrong.' },
  AUTH_FORBIDDEN: { status: 403, title: 'Your role does not allow this operation.' },
  OPERATOR_KEY_INVALID: { status: 401, title: 'The operator key is missing or wrong.' },
  TENANT_UNKNOWN_TIER: { status: 400, title: 'The tier does not exist.' },
  TENANT_NAME_TAKEN: { status: 409, title: 'A tenant with this name already exists.' },
  TENANT_NOT_FOUND: { status: 404, title: 'The tenant does not exist.' },
  TENANT_NOT_ACTIVE: { status: 403, title: 'The tenant is not active.' },
  IDENTITY_PASSWORD_TOO_SHORT: { status: 400, title: 'The password is too short.' },
  ENTITY_NOT_FOUND: { status: 404, title: 'The client entity does not exist.' },
  ENTITY_NAME_TAKEN: { status: 409, title: 'A client entity with this name already exists.' },
  PAGINATION_CURSOR_INVALID: { status: 400, title: 'The pagination cursor is invalid.' },
  SERVICE_NOT_READY: { status: 503, title: 'The service is not ready.' },
  INTERNAL_ERROR: { status: 500, title: 'An unexpected error occurred.' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ErrorCode = keyof typeof errorCatalogue;

/** An expected, typed failure. Route code throws it; the HTTP layer renders problem+json. */
export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly detail: string | undefined;
  readonly extensions: Record<string, unknown>;

  constructor(code: ErrorCode, detail?: string, extensions: Record<string, unknown> = {}) {
    super(detail ?? errorCatalogue[code].title);
    this.name = 'AppError';
    this.code = code;
    this.status = errorCatalogue[code].status;
    this.detail = detail;
    this.extensions = extensions;
  }
}

export function isAppError(error: unknown): error is AppError {
  return error instanceof AppError;
}
