import { changedFields, recordAuditEvent } from '../../audit/audit.service.ts';
import { runIdempotent } from '../../platform/database/idempotency.ts';
import type { TenantContext, TenantDb, TenantScopes } from '../../platform/database/tenant-scope.ts';
import { AppError } from '../../platform/errors.ts';
import { formatId, newUuid } from '../../platform/ids.ts';
import { loadBooks } from '../books.store.ts';
import { ledgerLimits } from '../ledger.limits.ts';
import type { Account, AccountChanges, NewAccount } from '../ledger.types.ts';
import {
  ancestorIds,
  countAccounts,
  findAccount,
  findAccountForUpdate,
  insertAccounts,
  listAccounts,
  updateAccount,
} from './accounts.store.ts';
import { type ChartTemplate, chartTemplates } from './chart-templates.ts';

interface Idempotent<Body> {
  status: number;
  body: Body;
  replayed: boolean;
}

/** Debit-normal types; a contra account overrides its normal balance explicitly. */
function defaultNormalBalance(type: Account['type']): Account['normalBalance'] {
  return type === 'asset' || type === 'expense' ? 'debit' : 'credit';
}

/** Charts of accounts of client entities. */
export class AccountsService {
  readonly #scopes: TenantScopes;

  constructor(scopes: TenantScopes) {
    this.#scopes = scopes;
  }

  templates(): ChartTemplate[] {
    return [...chartTemplates.values()];
  }

  /** Errors: ENTITY_NOT_FOUND. */
  async list(tenant: TenantContext, entityId: string, afterNumber: string | null, limit: number) {
    return await this.#scopes.run(tenant, async (db) => {
      await loadBooks(db, entityId);
      return await listAccounts(db, entityId, afterNumber, limit);
    });
  }

  /** Errors: ENTITY_NOT_FOUND, ACCOUNT_NOT_FOUND. */
  async get(tenant: TenantContext, entityId: string, id: string): Promise<Account> {
    return await this.#scopes.run(tenant, async (db) => {
      await loadBooks(db, entityId);
      const account = await findAccount(db, entityId, id);
      if (!account) throw new AppError('ACCOUNT_NOT_FOUND');
      return account;
    });
  }

  /**
   * Adds one account.
   * Errors: ENTITY_NOT_FOUND, ACCOUNT_NUMBER_TAKEN, ACCOUNT_PARENT_INVALID, IDEMPOTENCY_KEY_*.
   */
  async create<Body>(
    tenant: TenantContext,
    entityId: string,
    input: NewAccount,
    idempotencyKey: string | undefined,
    render: (account: Account) => Body,
  ): Promise<Idempotent<Body>> {
    return await this.#scopes.run(tenant, (db) =>
      runIdempotent(db, idempotencyKey, `POST /v1/entities/${entityId}/accounts`, input, async () => {
        await loadBooks(db, entityId);
        const account: Account = {
          id: newUuid(),
          entityId,
          number: input.number,
          name: input.name.trim(),
          type: input.type,
          normalBalance: input.normalBalance ?? defaultNormalBalance(input.type),
          parentId: input.parentId ?? null,
          active: true,
          systemRole: input.systemRole ?? null,
          taxLines: input.taxLines ?? {},
          balanceShards: input.balanceShards ?? ledgerLimits.balanceShardsDefault,
          createdAt: new Date(),
        };
        if (account.parentId !== null) await this.#checkParent(db, account, account.parentId);
        if ((await insertAccounts(db, [account])) === 'number_taken') {
          throw new AppError(
            'ACCOUNT_NUMBER_TAKEN',
            `Account ${account.number} (or the ${account.systemRole} role) already exists in this entity.`,
          );
        }
        await recordAuditEvent(db, {
          action: 'account.create',
          entityId,
          resource: { type: 'account', id: formatId('account', account.id) },
          after: account,
          summary: { number: account.number, name: account.name },
        });
        return { status: 201, body: render(account) };
      }),
    );
  }

  /**
   * Fills an empty chart from a template.
   * Errors: ENTITY_NOT_FOUND, CHART_TEMPLATE_NOT_FOUND, ACCOUNT_CHART_NOT_EMPTY, IDEMPOTENCY_KEY_*.
   */
  async applyTemplate<Body>(
    tenant: TenantContext,
    entityId: string,
    templateId: string,
    idempotencyKey: string | undefined,
    render: (accounts: Account[]) => Body,
  ): Promise<Idempotent<Body>> {
    const template = chartTemplates.get(templateId);
    if (!template) throw new AppError('CHART_TEMPLATE_NOT_FOUND', `No template "${templateId}".`);
    return await this.#scopes.run(tenant, (db) =>
      runIdempotent(
        db,
        idempotencyKey,
        `POST /v1/entities/${entityId}/accounts/from-template`,
        templateId,
        async () => {
          await loadBooks(db, entityId);
          const accounts = await applyChartTemplate(db, entityId, template);
          await recordAuditEvent(db, {
            action: 'account.apply_template',
            entityId,
            resource: { type: 'chart', id: formatId('entity', entityId) },
            after: accounts,
            summary: { template: templateId, accounts: accounts.length },
          });
          return { status: 201, body: render(accounts) };
        },
      ),
    );
  }

  /**
   * Renames, (de)activates, moves or re-shards an account. Shards can grow or shrink at any
   * time: balances are summed over all shard rows on read, whatever their number.
   * Errors: ENTITY_NOT_FOUND, ACCOUNT_NOT_FOUND, ACCOUNT_PARENT_INVALID.
   */
  async update(tenant: TenantContext, entityId: string, id: string, changes: AccountChanges): Promise<Account> {
    return await this.#scopes.run(tenant, async (db) => {
      await loadBooks(db, entityId);
      const account = await findAccountForUpdate(db, entityId, id);
      if (!account) throw new AppError('ACCOUNT_NOT_FOUND');
      if (changes.parentId) await this.#checkParent(db, account, changes.parentId);
      const updated = await updateAccount(db, account, changes);
      await recordAuditEvent(db, {
        action: 'account.update',
        entityId,
        resource: { type: 'account', id: formatId('account', id) },
        before: account,
        after: updated,
        summary: { fields: changedFields(changes) },
      });
      return updated;
    });
  }

  async #checkParent(db: TenantDb, account: Account, parentId: string): Promise<void> {
    const parent = await findAccount(db, account.entityId, parentId);
    if (!parent) throw new AppError('ACCOUNT_PARENT_INVALID', 'The parent account does not exist in this entity.');
    if (parent.type !== account.type) {
      throw new AppError(
        'ACCOUNT_PARENT_INVALID',
        `A ${account.type} account cannot sit under a ${parent.type} account.`,
      );
    }
    const chain = await ancestorIds(db, account.entityId, parentId, ledgerLimits.accountDepthMax);
    if (chain.includes(account.id)) throw new AppError('ACCOUNT_PARENT_INVALID', 'The parent is a sub-account of it.');
    if (chain.length >= ledgerLimits.accountDepthMax) {
      throw new AppError('ACCOUNT_PARENT_INVALID', `Accounts nest at most ${ledgerLimits.accountDepthMax} deep.`);
    }
  }
}

/** Creates a template's accounts in an empty chart. Errors: ACCOUNT_CHART_NOT_EMPTY. */
export async function applyChartTemplate(db: TenantDb, entityId: string, template: ChartTemplate): Promise<Account[]> {
  if ((await countAccounts(db, entityId)) > 0) throw new AppError('ACCOUNT_CHART_NOT_EMPTY');
  const idsByNumber = new Map<string, string>();
  const createdAt = new Date();
  const accounts = template.accounts.map((entry): Account => {
    const id = newUuid();
    idsByNumber.set(entry.number, id);
    return {
      id,
      entityId,
      number: entry.number,
      name: entry.name,
      type: entry.type,
      normalBalance: entry.normalBalance,
      parentId: entry.parent === undefined ? null : (idsByNumber.get(entry.parent) ?? null),
      active: true,
      systemRole: entry.systemRole ?? null,
      taxLines: entry.taxLines,
      balanceShards: ledgerLimits.balanceShardsDefault,
      createdAt,
    };
  });
  if ((await insertAccounts(db, accounts)) === 'number_taken') throw new AppError('ACCOUNT_CHART_NOT_EMPTY');
  return accounts;
}
