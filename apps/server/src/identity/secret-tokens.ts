import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Bearer secrets that the server looks up without knowing the tenant first: refresh tokens
 * (`chr_`), invitations (`chi_`) and API keys (`chk_`). The visible part names the tenant and
 * the row (`chk_<tenant hex><id hex>`), so the row is found in the tenant's own scope, and a
 * log line or a list can name the key without its secret; the secret (256 bits) is stored
 * only as a sha-256 hash, which is enough for a random secret of that size.
 */
export const secretTokenPrefixes = { refresh: 'chr', invitation: 'chi', apiKey: 'chk' } as const;
export type SecretTokenKind = keyof typeof secretTokenPrefixes;

const secretBytes = 32;
const shape = /^(ch[rik])_([0-9a-f]{32})([0-9a-f]{32})_([A-Za-z0-9_-]{43})$/;

export interface SecretToken {
  tenantId: string;
  id: string;
  secret: string;
}

function hexToUuid(hex: string): string {
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The identifying, non-secret part of a token: safe to show and to log. */
export function secretTokenPrefix(kind: SecretTokenKind, tenantId: string, id: string): string {
  return `${secretTokenPrefixes[kind]}_${tenantId.replaceAll('-', '')}${id.replaceAll('-', '')}`;
}

export function newSecretToken(kind: SecretTokenKind, tenantId: string, id: string): { token: string; hash: string } {
  const secret = randomBytes(secretBytes).toString('base64url');
  return { token: `${secretTokenPrefix(kind, tenantId, id)}_${secret}`, hash: hashSecret(secret) };
}

export function parseSecretToken(kind: SecretTokenKind, token: string): SecretToken | null {
  const match = shape.exec(token);
  if (!match || match[1] !== secretTokenPrefixes[kind]) return null;
  return { tenantId: hexToUuid(match[2] ?? ''), id: hexToUuid(match[3] ?? ''), secret: match[4] ?? '' };
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** Compares a presented secret with a stored hash in constant time. */
export function secretMatches(secret: string, storedHash: string): boolean {
  const presented = Buffer.from(hashSecret(secret), 'hex');
  const stored = Buffer.from(storedHash, 'hex');
  return presented.length === stored.length && timingSafeEqual(presented, stored);
}

export function looksLike(kind: SecretTokenKind, token: string): boolean {
  return token.startsWith(`${secretTokenPrefixes[kind]}_`);
}
