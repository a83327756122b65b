import { hash, verify } from '@node-rs/argon2';
import { AppError } from '../platform/errors.ts';
import { argon2Parameters, identityLimits } from './identity.limits.ts';

// Algorithm.Argon2id of @node-rs/argon2, a const enum that isolated modules cannot import.
const argon2id = 2;

export function checkPasswordPolicy(password: string): void {
  if (password.length < identityLimits.passwordLengthMin) {
    throw new AppError(
      'IDENTITY_PASSWORD_TOO_SHORT',
      `Passwords need at least ${identityLimits.passwordLengthMin} characters.`,
    );
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
