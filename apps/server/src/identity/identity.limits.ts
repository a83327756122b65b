import { assert } from '../platform/assert.ts';

/** Bounds of the identity domain, in one place. */
export const identityLimits = {
  /** Default minimum password length; COUNTINGHOUSE_PASSWORD_MIN_LENGTH overrides it. */
  passwordLengthMin: 12,
  passwordLengthMinFloor: 8,
  passwordLengthMax: 256,
  emailLengthMax: 254,
  accessTokenTtlSeconds: 15 * 60,
  /** Tolerated clock difference when checking `exp` and `nbf`. */
  clockToleranceSeconds: 5,
  /**
   * Access tokens each instance remembers as verified (until their `exp`, or a key change),
   * so repeated requests skip the signature check. Least recently used go first.
   */
  verifiedTokenCacheEntriesMax: 10_000,
  /** An instance that sees an unknown `kid` reloads the signing keys at most this often. */
  signingKeyReloadIntervalMs: 10_000,
  /** A key superseded this long ago is retired at the next rotation (longer than any token it signed lives). */
  signingKeyRetireAfterSeconds: 15 * 60 + 60,
  refreshTokenTtlSeconds: 30 * 24 * 3600,
  invitationTtlSeconds: 7 * 24 * 3600,
  /** The token between password and second factor. */
  mfaChallengeTtlSeconds: 5 * 60,
  /** Step-up: a sensitive operation needs a second factor at most this old. */
  stepUpMaxAgeSeconds: 10 * 60,
  recoveryCodeCount: 10,
  /** Entities one staff or client user may be assigned (they travel in the access token). */
  entityAssignmentsMax: 100,
  /** Sign-in throttling: failures before an account locks, and for how long. */
  accountFailuresMax: 5,
  accountLockoutSeconds: 15 * 60,
  /** Failures from one source address within the window before it is refused. */
  addressFailuresMax: 20,
  addressWindowSeconds: 15 * 60,
  addressesTrackedMax: 50_000,
  apiKeyNameLengthMax: 100,
  apiKeysListedMax: 200,
  usersListedMax: 500,
} as const;

assert(identityLimits.passwordLengthMin >= identityLimits.passwordLengthMinFloor, 'password minimum above its floor');
assert(
  identityLimits.signingKeyRetireAfterSeconds >
    identityLimits.accessTokenTtlSeconds + identityLimits.clockToleranceSeconds,
  'a signing key outlives the tokens it signed',
);
assert(identityLimits.stepUpMaxAgeSeconds <= identityLimits.refreshTokenTtlSeconds, 'step-up window is bounded');

// argon2id parameters (OWASP's recommended minimum: 19 MiB, 2 passes, 1 lane), explicit
// so a library default change cannot weaken stored hashes silently.
export const argon2Parameters = {
  memoryCost: 19_456,
  timeCost: 2,
  parallelism: 1,
} as const;
