import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { hash, verify } from '@node-rs/argon2';
import { assert } from '../platform/assert.ts';
import { AppError } from '../platform/errors.ts';
import { argon2Parameters, identityLimits } from './identity.limits.ts';

// Algorithm.Argon2id of @node-rs/argon2, a const enum that isolated modules cannot import.
const argon2id = 2;

export const defaultBreachedPasswordsFile = path.join(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../config/breached-passwords.txt',
);

/** Reads a breached-password list: one per line, `#` comments and blank lines skipped. */
export function loadBreachedPasswords(file: string): Set<string> {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  return new Set(lines.map((line) => line.trim().toLowerCase()).filter((line) => line !== '' && !line.startsWith('#')));
}

/**
 * The password rules for new passwords (onboarding, invitations): a configurable minimum
 * length (NIST SP 800-63B: at least 8, we default to 12) and a list of breached passwords.
 * No composition rules, which push people to predictable patterns.
 */
export class PasswordPolicy {
  readonly lengthMin: number;
  readonly #breached: ReadonlySet<string>;

  constructor(lengthMin: number, breached: ReadonlySet<string>) {
    assert(lengthMin >= identityLimits.passwordLengthMinFloor, 'password minimum below the floor');
    assert(lengthMin <= identityLimits.passwordLengthMax, 'password minimum above the maximum');
    this.lengthMin = lengthMin;
    this.#breached = breached;
  }

  static standard(): PasswordPolicy {
    return new PasswordPolicy(identityLimits.passwordLengthMin, loadBreachedPasswords(defaultBreachedPasswordsFile));
  }

  /** Errors: IDENTITY_PASSWORD_TOO_SHORT, IDENTITY_PASSWORD_BREACHED. */
  check(password: string): void {
    if (password.length < this.lengthMin) {
      throw new AppError('IDENTITY_PASSWORD_TOO_SHORT', `Passwords need at least ${this.lengthMin} characters.`);
    }
    if (this.#breached.has(password.trim().toLowerCase())) throw new AppError('IDENTITY_PASSWORD_BREACHED');
  }
}

export async function hashPassword(password: string): Promise<string> {
  return await hash(password, { algorithm: argon2id, ...argon2Parameters });
}

// Verifying against this when a user does not exist keeps sign-in time the same, so timing
// does not reveal which emails have accounts.
const unknownUserHash = hashPassword('countinghouse-timing-equaliser');

export async function verifyPassword(passwordHash: string | null, password: string): Promise<boolean> {
  const target = passwordHash ?? (await unknownUserHash);
  const matches = await verify(target, password).catch(() => false);
  return passwordHash !== null && matches;
}
