import type { webcrypto } from 'node:crypto';
import { exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';
import type pg from 'pg';
import { inTransaction } from '../platform/database/transaction.ts';
import { newUuid } from '../platform/ids.ts';
import type { Sealer } from '../platform/local-secrets.ts';

/**
 * Signing keys of the built-in issuer, shared by every instance through the database.
 * Private keys are sealed with the master key before they are stored; only the owner role
 * can read the table. The newest active key signs; the JWKS publishes all active keys.
 */
export const signingAlgorithm = 'ES256';

export interface SigningKey {
  kid: string;
  privateKey: webcrypto.CryptoKey;
  publicJwk: JWK;
}

// Instances starting together must agree on one first key, so creation is serialised.
const signingKeyLockKey = 7_042_002;

/** Creates the first signing key unless another instance created one while we waited. */
async function generateFirstSigningKey(ownerPool: pg.Pool, sealer: Sealer): Promise<void> {
  await inTransaction(ownerPool, async (client) => {
    await client.query('select pg_advisory_xact_lock($1)', [signingKeyLockKey]);
    const existing = await client.query('select 1 from signing_keys where retired_at is null limit 1');
    if (existing.rowCount === 0) {
      const { publicKey, privateKey } = await generateKeyPair(signingAlgorithm, { extractable: true });
      const kid = newUuid();
      const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: signingAlgorithm, use: 'sig' };
      const privateJwk = await exportJWK(privateKey);
      await client.query(
        'insert into signing_keys (kid, algorithm, public_jwk, private_jwk_sealed) values ($1, $2, $3, $4)',
        [kid, signingAlgorithm, publicJwk, sealer.seal(JSON.stringify(privateJwk))],
      );
    }
  });
}

/** Loads the active keys, creating the first one on a new deployment. Newest first. */
export async function loadSigningKeys(ownerPool: pg.Pool, sealer: Sealer): Promise<SigningKey[]> {
  const select = () =>
    ownerPool.query<{ kid: string; public_jwk: JWK; private_jwk_sealed: string }>(
      'select kid, public_jwk, private_jwk_sealed from signing_keys where retired_at is null order by created_at desc, kid desc',
    );
  let { rows } = await select();
  if (rows.length === 0) {
    await generateFirstSigningKey(ownerPool, sealer);
    ({ rows } = await select());
  }
  const keys: SigningKey[] = [];
  for (const row of rows) {
    let privateJwk: JWK;
    try {
      privateJwk = JSON.parse(sealer.open(row.private_jwk_sealed)) as JWK;
    } catch {
      throw new Error(
        `signing key ${row.kid} cannot be unsealed: COUNTINGHOUSE_MASTER_KEY differs from the one that sealed it`,
      );
    }
    const privateKey = (await importJWK(privateJwk, signingAlgorithm)) as webcrypto.CryptoKey;
    keys.push({ kid: row.kid, privateKey, publicJwk: row.public_jwk });
  }
  return keys;
}

/**
 * Rotates the built-in issuer's keys: a new key signs from now on; keys superseded longer
 * ago than any token they signed can live are retired (dropped from the JWKS). The JWKS
 * therefore carries the old and the new key through the overlap. Returns the new kid and
 * the retired ones; every instance picks the new key up on its next unknown `kid` or reload.
 */
export async function rotateSigningKeys(
  ownerPool: pg.Pool,
  sealer: Sealer,
  retireAfterSeconds: number,
): Promise<{ kid: string; retired: string[] }> {
  return await inTransaction(ownerPool, async (client) => {
    await client.query('select pg_advisory_xact_lock($1)', [signingKeyLockKey]);
    // A key is superseded when a newer one exists; retire those whose successor is old enough.
    const retired = await client.query<{ kid: string }>(
      `update signing_keys k set retired_at = now()
       where retired_at is null
         and exists (select 1 from signing_keys n where n.retired_at is null and n.created_at > k.created_at
                     and n.created_at < now() - make_interval(secs => $1))
       returning kid`,
      [retireAfterSeconds],
    );
    const { publicKey, privateKey } = await generateKeyPair(signingAlgorithm, { extractable: true });
    const kid = newUuid();
    const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: signingAlgorithm, use: 'sig' };
    await client.query(
      'insert into signing_keys (kid, algorithm, public_jwk, private_jwk_sealed, created_at) values ($1, $2, $3, $4, clock_timestamp())',
      [kid, signingAlgorithm, publicJwk, sealer.seal(JSON.stringify(await exportJWK(privateKey)))],
    );
    return { kid, retired: retired.rows.map((row) => row.kid) };
  });
}
