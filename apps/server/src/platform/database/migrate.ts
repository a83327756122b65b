import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';

/**
 * Numbered SQL migrations (`NNNN_name.sql`), applied in order, each in its own transaction,
 * recorded with a checksum. A landed migration is never edited: a changed checksum stops
 * the server, because the database would no longer match the code.
 */
const migrationsDir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'migrations');

export interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

export async function loadMigrations(): Promise<Migration[]> {
  const files = (await fs.readdir(migrationsDir)).filter((file) => file.endsWith('.sql')).sort();
  const migrations: Migration[] = [];
  for (const file of files) {
    const match = /^(\d{4})_([a-z0-9_]+)\.sql$/.exec(file);
    if (!match) throw new Error(`migration file name must be NNNN_name.sql: ${file}`);
    const sql = await fs.readFile(path.join(migrationsDir, file), 'utf8');
    migrations.push({
      version: Number(match[1]),
      name: match[2] ?? file,
      sql,
      checksum: createHash('sha256').update(sql).digest('hex'),
    });
  }
  // Numbers rise strictly; a gap is allowed so that work on parallel branches can reserve numbers.
  migrations.forEach((migration, index) => {
    const previous = migrations[index - 1];
    if (previous && migration.version <= previous.version)
      throw new Error(`migration number ${migration.version} is used twice`);
  });
  return migrations;
}

function quoteRole(role: string): string {
  if (role === '') throw new Error('cannot quote an empty role name');
  return `"${role.replaceAll('"', '""')}"`;
}

/** Applies pending migrations; the caller holds the setup advisory lock. */
export async function applyMigrations(client: pg.ClientBase, runtimeRole: string): Promise<number[]> {
  await client.query(`create table if not exists schema_migrations (
    version integer primary key,
    name text not null,
    checksum text not null,
    applied_at timestamptz not null default now()
  )`);
  const { rows } = await client.query<{ version: number; checksum: string }>(
    'select version, checksum from schema_migrations',
  );
  const applied = new Map(rows.map((row) => [row.version, row.checksum]));
  const quotedRole = quoteRole(runtimeRole);
  // The owner role is whoever runs migrations; policies that only the dispatcher may use name it.
  const owner = await client.query<{ role: string }>('select current_user::text as role');
  const quotedOwner = quoteRole(owner.rows[0]?.role ?? '');
  const newlyApplied: number[] = [];
  for (const migration of await loadMigrations()) {
    const checksum = applied.get(migration.version);
    if (checksum !== undefined) {
      if (checksum !== migration.checksum) {
        throw new Error(`migration ${migration.version}_${migration.name} was edited after it was applied`);
      }
      continue;
    }
    await client.query('begin');
    try {
      await client.query(
        migration.sql.replaceAll('{{runtime_role}}', quotedRole).replaceAll('{{owner_role}}', quotedOwner),
      );
      await client.query('insert into schema_migrations (version, name, checksum) values ($1, $2, $3)', [
        migration.version,
        migration.name,
        migration.checksum,
      ]);
      await client.query('commit');
    } catch (error) {
      await client.query('rollback');
      throw error;
    }
    newlyApplied.push(migration.version);
  }
  return newlyApplied;
}
