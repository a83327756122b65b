import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestStack, type TestStack } from '../../../test/harness.ts';
import { runtimeRoleFor, UnsafeRuntimeRoleError, verifyRuntimeRole } from './database-setup.ts';

/**
 * The schema rules every tenant table follows (0001_foundation.sql), checked in the catalog
 * so a new migration that forgets one fails here: forced row-level security with a policy on
 * app.tenant_id, tenant_id leading every key and index, tenant-aware foreign keys, and a
 * runtime role that can bypass none of it.
 */
let stack: TestStack;
let tenantTables: string[];

beforeAll(async () => {
  stack = await startTestStack();
  const { rows } = await stack.platform.ownerPool.query<{ table_name: string }>(
    `select c.table_name::text as table_name
       from information_schema.columns c
       join information_schema.tables t on t.table_schema = c.table_schema and t.table_name = c.table_name
      where c.table_schema = 'public' and c.column_name = 'tenant_id' and t.table_type = 'BASE TABLE'
      order by 1`,
  );
  tenantTables = rows.map((row) => row.table_name);
});

afterAll(async () => {
  await stack?.close();
});

describe('tenant tables', () => {
  it('are found in the catalog', () => {
    // Proves discovery works, so the rules below are not checked against an empty list.
    expect(tenantTables).toEqual(expect.arrayContaining(['entities', 'idempotency_keys', 'users']));
  });

  it('have tenant_id uuid NOT NULL', async () => {
    // Proves the column shape from information_schema.columns: a null or text tenant_id could escape the policy.
    const { rows } = await stack.platform.ownerPool.query<{
      table_name: string;
      data_type: string;
      is_nullable: string;
    }>(
      `select table_name::text as table_name, data_type::text as data_type, is_nullable::text as is_nullable
         from information_schema.columns
        where table_schema = 'public' and column_name = 'tenant_id' and table_name = any($1::text[])`,
      [tenantTables],
    );
    expect(rows.map((row) => row.table_name).sort()).toEqual([...tenantTables].sort());
    for (const row of rows) expect(row, row.table_name).toMatchObject({ data_type: 'uuid', is_nullable: 'NO' });
  });

  it('enable and force row-level security', async () => {
    // Proves relrowsecurity and relforcerowsecurity in pg_class, so even the table owner is filtered.
    const { rows } = await stack.platform.ownerPool.query<{ relname: string; enabled: boolean; forced: boolean }>(
      `select c.relname::text as relname, c.relrowsecurity as enabled, c.relforcerowsecurity as forced
         from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'public' and c.relname = any($1::text[])`,
      [tenantTables],
    );
    expect(rows.map((row) => row.relname).sort()).toEqual([...tenantTables].sort());
    for (const row of rows) expect(row, row.relname).toEqual({ relname: row.relname, enabled: true, forced: true });
  });

  it('have a policy comparing tenant_id with app.tenant_id for USING and WITH CHECK, and no looser one', async () => {
    // Proves via pg_policies that each table has a tenant policy on both clauses and every permissive policy names the tenant.
    const { rows } = await stack.platform.ownerPool.query<{
      tablename: string;
      policyname: string;
      permissive: string;
      qual: string | null;
      with_check: string | null;
      roles: string[];
    }>(
      `select tablename::text as tablename, policyname::text as policyname, permissive, qual, with_check,
              roles::text[] as roles
         from pg_policies where schemaname = 'public' and tablename = any($1::text[])`,
      [tenantTables],
    );
    const owner = await stack.platform.ownerPool.query<{ role: string }>('select current_user::text as role');
    const ownerRole = owner.rows[0]?.role;
    expect(ownerRole).toBeTruthy();
    const tenantClause = /tenant_id = .*current_setting\('app\.tenant_id'/;
    for (const table of tenantTables) {
      const policies = rows.filter((row) => row.tablename === table);
      const tenantPolicies = policies.filter(
        (row) => tenantClause.test(row.qual ?? '') && tenantClause.test(row.with_check ?? ''),
      );
      expect(tenantPolicies.length, `${table} has no policy on app.tenant_id for USING and WITH CHECK`).toBeGreaterThan(
        0,
      );
      // Permissive policies are OR-ed together: one that ignores the tenant would open the table.
      // The one exception is a policy granted to exactly the owner role (the role that runs
      // migrations, e.g. the job dispatcher's dispatcher_all): the owner owns these tables and
      // could disable their row-level security outright, so such a policy gives it nothing it
      // lacks, and the runtime role, which every tenant request uses, is not among its roles.
      const ownerOnly = (row: { roles: string[] }) => row.roles.length === 1 && row.roles[0] === ownerRole;
      for (const policy of policies.filter((row) => row.permissive === 'PERMISSIVE' && !ownerOnly(row))) {
        expect(policy.qual ?? '', `${table}.${policy.policyname} USING`).toMatch(tenantClause);
        if (policy.with_check !== null) {
          expect(policy.with_check, `${table}.${policy.policyname} WITH CHECK`).toMatch(tenantClause);
        }
      }
    }
    // The exception is in use (the job dispatcher), so the rule above is exercised on it.
    expect(rows.filter((row) => row.policyname === 'dispatcher_all').map((row) => row.roles)).toContainEqual([
      ownerRole,
    ]);
  });

  it('lead their primary key and every index with tenant_id', async () => {
    // Proves via pg_index.indkey[0] that each index (primary, unique, plain) starts with tenant_id, and a primary key exists.
    const { rows } = await stack.platform.ownerPool.query<{
      table_name: string;
      index_name: string;
      is_primary: boolean;
      first_column: string | null;
    }>(
      `select c.relname::text as table_name, i.indexrelid::regclass::text as index_name,
              i.indisprimary as is_primary, a.attname::text as first_column
         from pg_index i
         join pg_class c on c.oid = i.indrelid
         join pg_namespace n on n.oid = c.relnamespace
         left join pg_attribute a on a.attrelid = i.indrelid and a.attnum = i.indkey[0]
        where n.nspname = 'public' and c.relname = any($1::text[])`,
      [tenantTables],
    );
    for (const table of tenantTables) {
      const indexes = rows.filter((row) => row.table_name === table);
      expect(
        indexes.some((row) => row.is_primary),
        `${table} has no primary key`,
      ).toBe(true);
      for (const index of indexes) expect(index.first_column, index.index_name).toBe('tenant_id');
    }
  });

  it('carry tenant_id in every foreign key, matched to tenant_id of a tenant table', async () => {
    // Proves via pg_constraint conkey/confkey that no foreign key can point a row at another tenant's row.
    const { rows } = await stack.platform.ownerPool.query<{
      constraint_name: string;
      table_name: string;
      referenced_table: string;
      pairs: string[];
    }>(
      `select con.conname::text as constraint_name, c.relname::text as table_name,
              rc.relname::text as referenced_table,
              array(select la.attname || '->' || ra.attname
                      from unnest(con.conkey, con.confkey) as k(local_num, ref_num)
                      join pg_attribute la on la.attrelid = con.conrelid and la.attnum = k.local_num
                      join pg_attribute ra on ra.attrelid = con.confrelid and ra.attnum = k.ref_num)::text[] as pairs
         from pg_constraint con
         join pg_class c on c.oid = con.conrelid
         join pg_class rc on rc.oid = con.confrelid
         join pg_namespace n on n.oid = c.relnamespace
        where con.contype = 'f' and n.nspname = 'public'
          and (c.relname = any($1::text[]) or rc.relname = any($1::text[]))`,
      [tenantTables],
    );
    // The foundation has one (entities.created_by -> users), so the loop below cannot be empty.
    expect(rows.map((row) => row.constraint_name).length).toBeGreaterThan(0);
    for (const fk of rows) {
      const label = `${fk.table_name}.${fk.constraint_name} -> ${fk.referenced_table}`;
      if (tenantTables.includes(fk.table_name)) {
        expect(
          fk.pairs.some((pair) => pair.startsWith('tenant_id->')),
          `${label} lacks tenant_id`,
        ).toBe(true);
      }
      if (tenantTables.includes(fk.referenced_table)) expect(fk.pairs, label).toContain('tenant_id->tenant_id');
    }
  });
});

describe('the runtime role', () => {
  it('is the database runtime role: not superuser, no BYPASSRLS, owning nothing, unable to create tables', async () => {
    // Proves the role's attributes from pg_roles, pg_class ownership and schema privileges, as seen by the runtime pool itself.
    const { rows } = await stack.platform.runtimePool.query<{
      role: string;
      database: string;
      superuser: boolean;
      bypassrls: boolean;
      owned: string[];
      can_create: boolean;
    }>(
      `select current_user::text as role, current_database()::text as database,
              r.rolsuper as superuser, r.rolbypassrls as bypassrls,
              array(select c.relname::text from pg_class c where c.relowner = r.oid) as owned,
              has_schema_privilege(current_user, 'public', 'CREATE') as can_create
         from pg_roles r where r.rolname = current_user`,
    );
    const role = rows[0];
    expect(role).toBeDefined();
    expect(role?.role).toBe(runtimeRoleFor(role?.database ?? ''));
    expect(role).toMatchObject({ superuser: false, bypassrls: false, owned: [], can_create: false });
  });

  it('passes verifyRuntimeRole, while the owner pool is refused', async () => {
    // Proves the startup check both ways: the runtime pool resolves; the owner (table owner, superuser in CI) is rejected.
    await expect(verifyRuntimeRole(stack.platform.runtimePool)).resolves.toBeUndefined();

    const { rows } = await stack.platform.ownerPool.query<{ role: string; superuser: boolean }>(
      'select rolname::text as role, rolsuper as superuser from pg_roles where rolname = current_user',
    );
    const owner = rows[0];
    expect(owner).toBeDefined();
    const refusal = verifyRuntimeRole(stack.platform.ownerPool);
    await expect(refusal).rejects.toBeInstanceOf(UnsafeRuntimeRoleError);
    // Superuser is checked first; a plain owner is refused for the tables it owns.
    const reason = owner?.superuser
      ? new RegExp(`bypass row-level security through: .*\\b${owner.role}\\b`)
      : /owns tables .*\bentities\b/;
    await expect(refusal).rejects.toThrow(reason);
  });
});
