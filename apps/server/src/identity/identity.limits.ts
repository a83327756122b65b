/** Bounds of the identity domain, in one place. */
export const identityLimits = {
  passwordLengthMin: 12,
  passwordLengthMax: 256,
  emailLengthMax: 254,
  accessTokenTtlSeconds: 15 * 60,
  /** Tolerated clock difference when checking `exp` and `nbf`. */
  clockToleranceSeconds: 5,
} as const;

// argon2id parameters (OWASP's recommended minimum: 19 MiB, 2 passes, 1 lane), explicit
// so a library default change cannot weaken stored hashes silently.
export const argon2Parameters = {
  memoryCost: 19_456,
  timeCost: 2,
  parallelism: 1,
} as const;
