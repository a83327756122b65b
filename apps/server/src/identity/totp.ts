import { randomBytes } from 'node:crypto';
import { Secret, TOTP } from 'otpauth';
import { identityLimits } from './identity.limits.ts';
import { hashSecret } from './secret-tokens.ts';

/** TOTP (RFC 6238) as every authenticator app speaks it: SHA-1, 6 digits, 30 s steps. */
const totpPeriodSeconds = 30;
const totpDigits = 6;
/** Codes one step either side are accepted (clock drift). */
const totpWindowSteps = 1;
const issuerLabel = 'Countinghouse';

function totpOf(secretBase32: string, label: string): TOTP {
  return new TOTP({
    issuer: issuerLabel,
    label,
    algorithm: 'SHA1',
    digits: totpDigits,
    period: totpPeriodSeconds,
    secret: Secret.fromBase32(secretBase32),
  });
}

export function newTotpSecret(): string {
  return new Secret({ size: 20 }).base32;
}

export function totpUri(secretBase32: string, label: string): string {
  return totpOf(secretBase32, label).toString();
}

/** The code for a moment (tests and the benchmark act as the authenticator app). */
export function totpCode(secretBase32: string, atMs = Date.now()): string {
  return totpOf(secretBase32, 'code').generate({ timestamp: atMs });
}

/**
 * The time step a code matches, or null. The caller refuses a step at or before the last one
 * used, so a code cannot be replayed within its window.
 */
export function matchTotp(secretBase32: string, code: string, nowMs = Date.now()): number | null {
  if (!/^[0-9]{6}$/.test(code)) return null;
  const delta = totpOf(secretBase32, 'code').validate({ token: code, timestamp: nowMs, window: totpWindowSteps });
  if (delta === null) return null;
  return Math.floor(nowMs / 1000 / totpPeriodSeconds) + delta;
}

/** Ten recovery codes of 80 bits each, shown once; stored as sha-256 hashes. */
export function newRecoveryCodes(): { codes: string[]; hashes: string[] } {
  const codes: string[] = [];
  for (let index = 0; index < identityLimits.recoveryCodeCount; index++) {
    const raw = randomBytes(10).toString('hex');
    codes.push(`${raw.slice(0, 5)}-${raw.slice(5, 10)}-${raw.slice(10, 15)}-${raw.slice(15)}`);
  }
  return { codes, hashes: codes.map(recoveryCodeHash) };
}

export function recoveryCodeHash(code: string): string {
  return hashSecret(code.trim().toLowerCase().replaceAll('-', ''));
}
