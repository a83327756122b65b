import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

/**
 * Secrets that live in the local data folder (`COUNTINGHOUSE_HOME`), each in its own file
 * with mode 0600. The folder itself is 0755 so that, when the server runs as root, the
 * `postgres` OS user can still reach the embedded cluster's data folder inside it.
 */
export async function ensureHome(home: string): Promise<void> {
  await fs.mkdir(home, { recursive: true, mode: 0o755 });
}

export interface LocalSecret {
  value: string;
  /** True when this call generated the secret (the caller may print it once). */
  created: boolean;
}

export async function readOrCreateSecret(home: string, fileName: string, generate: () => string): Promise<LocalSecret> {
  const file = path.join(home, fileName);
  try {
    const value = (await fs.readFile(file, 'utf8')).trim();
    if (value.length > 0) return { value, created: false };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const value = generate();
  // `wx` fails if another process created the file first; then we read theirs.
  try {
    await fs.writeFile(file, `${value}\n`, { mode: 0o600, flag: 'wx' });
    return { value, created: true };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return { value: (await fs.readFile(file, 'utf8')).trim(), created: false };
  }
}

export function randomToken(bytes: number): string {
  return randomBytes(bytes).toString('base64url');
}

/** AES-256-GCM sealing for secrets stored in the database (signing keys, later taxpayer ids). */
export class Sealer {
  readonly #key: Buffer;

  constructor(masterKeyHex: string) {
    this.#key = Buffer.from(masterKeyHex, 'hex');
    if (this.#key.length !== 32) throw new Error('master key must be 32 bytes');
  }

  seal(plaintext: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return ['v1', iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), body.toString('base64url')].join(
      '.',
    );
  }

  open(sealed: string): string {
    const [version, iv, tag, body] = sealed.split('.');
    if (version !== 'v1' || iv === undefined || tag === undefined || body === undefined) {
      throw new Error('sealed value has an unknown format');
    }
    const decipher = createDecipheriv('aes-256-gcm', this.#key, Buffer.from(iv, 'base64url'));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString('utf8');
  }
}
