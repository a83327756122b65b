import pg from 'pg';
import type { Logger } from 'pino';
import { randomToken } from '../local-secrets.ts';
import { applyMigrations } from './migrate.ts';
import { logClientErrors } from './pool-errors.ts';

/**
 * Two roles per deployment (ARCHITECTURE.md 4): the owner role that runs migrations and
 * provisioning, and a runtime login role — NOSUPERUSER, NOBYPASSRLS, owning nothing — that
 * every tenant request uses, so row-level security always applies to it.
 */

// One advisory lock key for setup, so several instances starting at once take turns.
const setupLockKey = 7_042_001;
const runtimePasswordSecret = 'runtime_role_password';

export interface PreparedDatabase {
  runtimeUrl: string;
  runtimeRole: string;
  appliedMigrations: number[];
}

/** The runtime role is named after the database, since roles are shared by the whole cluster. */
export function runtimeRoleFor(databaseName: string): string {
  return `${databaseName}_runtime`.slice(0, 63);
}

function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

function quoteLiteral(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

/**
 * Embedded default only: the superuser creates the owner role and the database, once.
 * Returns the owner URL that everything else uses.
 */
export async function bootstrapOwnerDatabase(
  superuserUrl: string,
  databaseName: string,
  ownerPassword: string,
): Promise<string> {
  const ownerRole = `${databaseName}_owner`;
  const client = new pg.Client({ connectionString: superuserUrl });
  await client.connect();
  try {
    const role = await client.query('select 1 from pg_roles where rolname = $1', [ownerRole]);
    const verb = role.rowCount === 0 ? 'create' : 'alter';
    await client.query(
      `${verb} role ${quoteIdentifier(ownerRole)} login nosuperuser createrole createdb nobypassrls password ${quoteLiteral(ownerPassword)}`,
    );
    // Tenant purges and moves switch triggers and foreign-key checks off for their own
    // transaction (session_replication_role = replica; docs/offboarding.md), which PostgreSQL
    // 15+ lets a superuser grant to a non-superuser owner.
    await client.query(`grant set on parameter session_replication_role to ${quoteIdentifier(ownerRole)}`);
    const database = await client.query('select 1 from pg_database where datname = $1', [databaseName]);
    if (database.rowCount === 0) {
      await client.query(`create database ${quoteIdentifier(databaseName)} owner ${quoteIdentifier(ownerRole)}`);
    }
  } finally {
    await client.end();
  }
  const url = new URL(superuserUrl);
  url.username = ownerRole;
  url.password = ownerPassword;
  url.pathname = `/${databaseName}`;
  return url.toString();
}

async function ensureRuntimeRole(client: pg.ClientBase, runtimeRole: string): Promise<string> {
  const stored = await client.query<{ value: string }>('select value from platform_secrets where name = $1', [
    runtimePasswordSecret,
  ]);
  const existingPassword = stored.rows[0]?.value;
  if (existingPassword !== undefined) return existingPassword;
  const password = randomToken(24);
  // Only LOGIN and the password are set here: a role created by a non-superuser owner is
  // NOSUPERUSER and NOBYPASSRLS by default, and PostgreSQL 16+ refuses to let a
  // non-superuser even restate those attributes. verifyRuntimeRole checks them afterwards.
  await client.query(`alter role ${quoteIdentifier(runtimeRole)} login password ${quoteLiteral(password)}`);
  await client.query(
    `insert into platform_secrets (name, value) values ($1, $2)
     on conflict (name) do update set value = excluded.value`,
    [runtimePasswordSecret, password],
  );
  return password;
}

/** Migrates the database and makes sure the runtime role exists; safe to run concurrently. */
export async function prepareDatabase(ownerUrl: string, log: Logger): Promise<PreparedDatabase> {
  const client = new pg.Client({ connectionString: ownerUrl });
  logClientErrors(client, log, { client: 'setup' });
  await client.connect();
  try {
    await client.query('select pg_advisory_lock($1)', [setupLockKey]);
    const { rows } = await client.query<{ database: string }>('select current_database() as database');
    const databaseName = rows[0]?.database ?? '';
    const runtimeRole = runtimeRoleFor(databaseName);
    // The role must exist before migrations grant to it; its password is stored afterwards.
    const role = await client.query('select 1 from pg_roles where rolname = $1', [runtimeRole]);
    if (role.rowCount === 0) await client.query(`create role ${quoteIdentifier(runtimeRole)} nologin noinherit`);
    const appliedMigrations = await applyMigrations(client, runtimeRole);
    if (appliedMigrations.length > 0) log.info({ appliedMigrations }, 'applied database migrations');
    const password = await ensureRuntimeRole(client, runtimeRole);
    await client.query('select pg_advisory_unlock($1)', [setupLockKey]);
    const url = new URL(ownerUrl);
    url.username = runtimeRole;
    url.password = password;
    return { runtimeUrl: url.toString(), runtimeRole, appliedMigrations };
  } finally {
    await client.end();
  }
}

export class UnsafeRuntimeRoleError extends Error {
  override name = 'UnsafeRuntimeRoleError';
}

/**
 * Refuses to start when the runtime role could bypass row-level security: superuser,
 * BYPASSRLS (directly or through a role it belongs to), or owner of any table.
 */
export async function verifyRuntimeRole(pool: pg.Pool): Promise<void> {
  const { rows } = await pool.query<{ unsafe_roles: string[]; owned_tables: string[] }>(`
    select
      array(select r.rolname::text from pg_roles r
            where pg_has_role(current_user, r.oid, 'member') and (r.rolsuper or r.rolbypassrls)) as unsafe_roles,
      array(select c.relname::text from pg_class c
            where c.relowner = (select oid from pg_roles where rolname = current_user)
              and c.relkind in ('r', 'p', 'v', 'm')) as owned_tables`);
  const result = rows[0];
  if (!result) throw new UnsafeRuntimeRoleError('could not inspect the runtime role');
  if (result.unsafe_roles.length > 0) {
    throw new UnsafeRuntimeRoleError(
      `runtime role can bypass row-level security through: ${result.unsafe_roles.join(', ')}`,
    );
  }
  if (result.owned_tables.length > 0) {
    throw new UnsafeRuntimeRoleError(
      `runtime role owns tables and would bypass their policies: ${result.owned_tables.join(', ')}`,
    );
  }
}
