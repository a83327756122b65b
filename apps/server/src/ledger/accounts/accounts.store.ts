import type { TenantDb } from '../../platform/database/tenant-scope.ts';
import type { Account, AccountChanges, TaxLines } from '../ledger.types.ts';

/** Accounts in PostgreSQL; the scope's row-level security supplies tenant and entity limits. */
interface AccountRow {
  id: string;
  entity_id: string;
  number: string;
  name: string;
  account_type: Account['type'];
  normal_balance: Account['normalBalance'];
  parent_id: string | null;
  active: boolean;
  system_role: Account['systemRole'];
  tax_lines: TaxLines;
  balance_shards: number;
  created_at: Date;
}

const columns =
  'id, entity_id, number, name, account_type, normal_balance, parent_id, active, system_role, tax_lines, balance_shards, created_at';

function fromRow(row: AccountRow): Account {
  return {
    id: row.id,
    entityId: row.entity_id,
    number: row.number,
    name: row.name,
    type: row.account_type,
    normalBalance: row.normal_balance,
    parentId: row.parent_id,
    active: row.active,
    systemRole: row.system_role,
    taxLines: row.tax_lines,
    balanceShards: row.balance_shards,
    createdAt: row.created_at,
  };
}

/** Inserts accounts in order (parents first); stops at a taken number or system role. */
export async function insertAccounts(db: TenantDb, accounts: Account[]): Promise<'inserted' | 'number_taken'> {
  const result = await db.query(
    `insert into accounts (tenant_id, ${columns})
     select $1, a.id, a.entity_id, a.number, a.name, a.account_type, a.normal_balance, a.parent_id, a.active,
            a.system_role, a.tax_lines, a.balance_shards, a.created_at
       from unnest($2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[], $8::uuid[],
                               $9::boolean[], $10::text[], $11::jsonb[], $12::smallint[], $13::timestamptz[])
                    with ordinality as a(id, entity_id, number, name, account_type, normal_balance, parent_id,
                                         active, system_role, tax_lines, balance_shards, created_at, position)
     order by a.position
     on conflict do nothing`,
    [
      db.tenantId,
      accounts.map((a) => a.id),
      accounts.map((a) => a.entityId),
      accounts.map((a) => a.number),
      accounts.map((a) => a.name),
      accounts.map((a) => a.type),
      accounts.map((a) => a.normalBalance),
      accounts.map((a) => a.parentId),
      accounts.map((a) => a.active),
      accounts.map((a) => a.systemRole),
      accounts.map((a) => JSON.stringify(a.taxLines)),
      accounts.map((a) => a.balanceShards),
      accounts.map((a) => a.createdAt),
    ],
  );
  return result.rowCount === accounts.length ? 'inserted' : 'number_taken';
}

export async function findAccount(db: TenantDb, entityId: string, id: string): Promise<Account | null> {
  const { rows } = await db.query<AccountRow>(`select ${columns} from accounts where entity_id = $1 and id = $2`, [
    entityId,
    id,
  ]);
  return rows[0] ? fromRow(rows[0]) : null;
}

export async function findAccountForUpdate(db: TenantDb, entityId: string, id: string): Promise<Account | null> {
  const { rows } = await db.query<AccountRow>(
    `select ${columns} from accounts where entity_id = $1 and id = $2 for update`,
    [entityId, id],
  );
  return rows[0] ? fromRow(rows[0]) : null;
}

/** All accounts of an entity by number; charts are bounded by ledgerLimits.accountsPerEntityMax. */
export async function listAccounts(
  db: TenantDb,
  entityId: string,
  afterNumber: string | null,
  limit: number,
): Promise<{ items: Account[]; nextAfterNumber: string | null }> {
  const { rows } = await db.query<AccountRow>(
    `select ${columns} from accounts
      where entity_id = $1 and ($2::text is null or number > $2::text)
      order by number limit $3`,
    [entityId, afterNumber, limit + 1],
  );
  const items = rows.slice(0, limit).map(fromRow);
  const last = items.at(-1);
  return { items, nextAfterNumber: rows.length > limit && last ? last.number : null };
}

export async function countAccounts(db: TenantDb, entityId: string): Promise<number> {
  const { rows } = await db.query<{ total: number }>(
    'select count(*)::int as total from accounts where entity_id = $1',
    [entityId],
  );
  return rows[0]?.total ?? 0;
}

/** The chain of ancestors of an account, nearest first, bounded by `depthMax`. */
export async function ancestorIds(db: TenantDb, entityId: string, id: string, depthMax: number): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(
    `with recursive chain(id, parent_id, depth) as (
       select id, parent_id, 1 from accounts where entity_id = $1 and id = $2
       union all
       select a.id, a.parent_id, c.depth + 1 from accounts a join chain c on a.id = c.parent_id
        where a.entity_id = $1 and c.depth <= $3)
     select id from chain order by depth`,
    [entityId, id, depthMax + 1],
  );
  return rows.map((row) => row.id);
}

export async function updateAccount(db: TenantDb, account: Account, changes: AccountChanges): Promise<Account> {
  const { rows } = await db.query<AccountRow>(
    `update accounts set name = $3, active = $4, parent_id = $5, tax_lines = $6, balance_shards = $7
      where entity_id = $1 and id = $2 returning ${columns}`,
    [
      account.entityId,
      account.id,
      changes.name ?? account.name,
      changes.active ?? account.active,
      changes.parentId === undefined ? account.parentId : changes.parentId,
      JSON.stringify(changes.taxLines ?? account.taxLines),
      changes.balanceShards ?? account.balanceShards,
    ],
  );
  const row = rows[0];
  if (!row) throw new Error('account vanished inside its own transaction');
  return fromRow(row);
}

/** What posting needs of each account: present in the entity, active, how many shards. */
export interface PostingAccount {
  id: string;
  active: boolean;
  balanceShards: number;
  type: Account['type'];
  systemRole: Account['systemRole'];
}

export async function postingAccounts(
  db: TenantDb,
  entityId: string,
  ids: string[],
): Promise<Map<string, PostingAccount>> {
  const { rows } = await db.query<{
    id: string;
    active: boolean;
    balance_shards: number;
    account_type: Account['type'];
    system_role: Account['systemRole'];
  }>(
    `select id, active, balance_shards, account_type, system_role from accounts
      where entity_id = $1 and id = any($2::uuid[])`,
    [entityId, ids],
  );
  return new Map(
    rows.map((row) => [
      row.id,
      {
        id: row.id,
        active: row.active,
        balanceShards: row.balance_shards,
        type: row.account_type,
        systemRole: row.system_role,
      },
    ]),
  );
}
