/** Errors of authentication and identity. */
export const identityErrors = {
  AUTH_CREDENTIALS_MISSING: { status: 401, title: 'A bearer token is required.' },
  AUTH_TOKEN_INVALID: { status: 401, title: 'The bearer token is invalid or expired.' },
  AUTH_LOGIN_FAILED: { status: 401, title: 'The tenant, email or password is wrong.' },
  AUTH_FORBIDDEN: { status: 403, title: 'Your role does not allow this operation.' },
  IDENTITY_PASSWORD_TOO_SHORT: { status: 400, title: 'The password is too short.' },
} as const;
