/** Errors of authentication and identity. */
export const identityErrors = {
  AUTH_CREDENTIALS_MISSING: { status: 401, title: 'A bearer token is required.' },
  AUTH_TOKEN_INVALID: { status: 401, title: 'The bearer token is invalid or expired.' },
  AUTH_LOGIN_FAILED: { status: 401, title: 'The tenant, email or password is wrong.' },
  AUTH_FORBIDDEN: { status: 403, title: 'Your role does not allow this operation.' },
  AUTH_ACTION_UNDECLARED: {
    status: 500,
    title: 'This route declares no access-table action, so it is refused to everyone.',
  },
  AUTH_MFA_ENROLMENT_REQUIRED: {
    status: 403,
    title: 'Your firm requires multi-factor authentication: enrol a second factor first.',
  },
  AUTH_STEP_UP_REQUIRED: {
    status: 403,
    title: 'This operation needs a recent second factor: verify a code at POST /v1/auth/step-up.',
  },
  AUTH_MFA_CODE_INVALID: { status: 401, title: 'The one-time or recovery code is wrong or already used.' },
  AUTH_REFRESH_INVALID: { status: 401, title: 'The refresh token is invalid, expired or revoked.' },
  AUTH_REFRESH_REUSED: {
    status: 401,
    title: 'The refresh token was already used; its whole session has been revoked.',
  },
  AUTH_SIGN_IN_THROTTLED: { status: 429, title: 'Too many failed sign-ins; try again later.' },
  IDENTITY_PASSWORD_TOO_SHORT: { status: 400, title: 'The password is too short.' },
  IDENTITY_PASSWORD_BREACHED: {
    status: 400,
    title: 'The password appears in a list of breached passwords; choose another.',
  },
  IDENTITY_INVITATION_INVALID: { status: 400, title: 'The invitation is unknown, expired, revoked or already used.' },
  IDENTITY_EMAIL_TAKEN: { status: 409, title: 'A user with this email already belongs to the firm.' },
  IDENTITY_ROLE_NOT_GRANTABLE: { status: 403, title: 'Your role cannot grant this role.' },
  IDENTITY_ASSIGNMENT_INVALID: {
    status: 400,
    title: 'The entity assignment does not fit the role (a client has exactly one entity, staff up to the limit).',
  },
  IDENTITY_USER_NOT_FOUND: { status: 404, title: 'There is no such user in the firm.' },
  IDENTITY_LAST_OWNER: { status: 409, title: 'The firm must keep at least one active owner.' },
  IDENTITY_MFA_ALREADY_ENROLLED: { status: 409, title: 'A second factor is already enrolled.' },
  IDENTITY_MFA_NOT_STARTED: { status: 409, title: 'Start TOTP enrolment before confirming it.' },
  IDENTITY_API_KEY_NOT_FOUND: { status: 404, title: 'There is no such API key in the firm.' },
  IDENTITY_API_KEY_INVALID: { status: 400, title: 'The API key request is invalid (expiry or entities).' },
  IDENTITY_SIGNING_KEY_NOT_FOUND: { status: 404, title: 'There is no such active signing key.' },
} as const;
