import type { Logger } from 'pino';
import { recordAuditEvent, systemOrigin } from '../audit/audit.service.ts';
import { hashPassword, PasswordPolicy } from '../identity/passwords.ts';
import { insertUser } from '../identity/users.store.ts';
import { assert } from '../platform/assert.ts';
import {
  allEntities,
  type EntityScope,
  type RequestOrigin,
  type TenantContext,
  type TenantScopes,
} from '../platform/database/tenant-scope.ts';
import { AppError } from '../platform/errors.ts';
import { formatId, newUuid } from '../platform/ids.ts';
import type { TenancyStore } from './tenancy.store.ts';
import type { NewTenant, TenantRecord } from './tenancy.types.ts';
import { sharedPoolPlacement, type TierCatalogue } from './tiers.ts';

// Registry lookups happen on every request; a short cache keeps them off the database
// while a suspension still takes effect within this many milliseconds.
const directoryCacheTtlMs = 5_000;
const directoryCacheEntriesMax = 10_000;

/** The scope for a tenant; the control plane and owners see every client entity. */
export function tenantContextOf(record: TenantRecord, entityScope: EntityScope = allEntities): TenantContext {
  return { tenantId: record.id, tier: record.tier, placement: record.placement, entityScope };
}

/** The control plane's tenant registry: onboarding and lookup. */
export class TenancyService {
  readonly #store: TenancyStore;
  readonly #scopes: TenantScopes;
  readonly #log: Logger;
  readonly #tiers: TierCatalogue;
  readonly #cache = new Map<string, { record: TenantRecord; expiresAtMs: number }>();
  readonly #passwords: PasswordPolicy;

  constructor(
    store: TenancyStore,
    scopes: TenantScopes,
    tiers: TierCatalogue,
    log: Logger,
    passwords: PasswordPolicy = PasswordPolicy.standard(),
  ) {
    this.#passwords = passwords;
    this.#store = store;
    this.#tiers = tiers;
    this.#scopes = scopes;
    this.#log = log;
  }

  /**
   * Onboards a firm: registry row, then its first admin user inside the tenant's own scope,
   * which also opens the tenant's audit log with the onboarding operator as actor.
   * Errors: TENANT_UNKNOWN_TIER, TENANT_REGULATORY_TIER_NOT_ALLOWED, IDENTITY_PASSWORD_TOO_SHORT,
   * IDENTITY_PASSWORD_BREACHED, TENANT_NAME_TAKEN.
   */
  async createTenant(input: NewTenant, origin: RequestOrigin = systemOrigin): Promise<TenantRecord> {
    const tier = this.#tiers.find(input.tier);
    if (!tier) throw new AppError('TENANT_UNKNOWN_TIER', `There is no tier named "${input.tier}".`);
    const regulatoryTier = input.regulatoryTier ?? 'standard';
    if (!tier.regulatoryTiers.includes(regulatoryTier)) {
      throw new AppError(
        'TENANT_REGULATORY_TIER_NOT_ALLOWED',
        `Tier "${tier.name}" allows the regulatory tiers ${tier.regulatoryTiers.join(', ')}.`,
      );
    }
    this.#passwords.check(input.admin.password);
    const passwordHash = await hashPassword(input.admin.password);
    const now = new Date();
    const record: TenantRecord = {
      id: newUuid(),
      name: input.name.trim(),
      tier: tier.name,
      regulatoryTier,
      status: 'provisioning',
      placement: sharedPoolPlacement,
      createdAt: now,
      updatedAt: now,
    };
    if ((await this.#store.insert(record)) === 'name_taken') {
      throw new AppError('TENANT_NAME_TAKEN', `A tenant named "${record.name}" already exists.`);
    }
    try {
      await this.#scopes.run({ ...tenantContextOf(record), origin }, async (db) => {
        const adminId = newUuid();
        await insertUser(db, {
          id: adminId,
          tenantId: record.id,
          email: input.admin.email.toLowerCase(),
          passwordHash,
          roles: ['owner'],
        });
        await recordAuditEvent(db, {
          action: 'tenant.create',
          resource: { type: 'tenant', id: formatId('tenant', record.id) },
          after: record,
          summary: { name: record.name, tier: record.tier, adminUserId: formatId('user', adminId) },
        });
      });
    } catch (error) {
      // Nothing acknowledged yet: undo the registry row so a retry starts clean.
      await this.#store.remove(record.id);
      throw error;
    }
    // The stored record, so the response carries the updatedAt the registry will show.
    const active = await this.#store.setStatus(record.id, 'active');
    assert(active !== null, `tenant ${record.id} vanished during onboarding`);
    this.#log.info({ tenantId: record.id, tier: record.tier }, 'tenant onboarded');
    return active;
  }

  async getTenant(id: string): Promise<TenantRecord | null> {
    return await this.#store.findById(id);
  }

  /** Drops the cached registry row, so this instance sees a placement or status change at once. */
  forget(id: string): void {
    this.#cache.delete(id);
  }

  /** Cached registry lookup for the request path. */
  async lookup(id: string): Promise<TenantRecord | null> {
    const nowMs = Date.now();
    const cached = this.#cache.get(id);
    if (cached && cached.expiresAtMs > nowMs) return cached.record;
    const record = await this.#store.findById(id);
    if (this.#cache.size >= directoryCacheEntriesMax) this.#cache.clear();
    if (record) this.#cache.set(id, { record, expiresAtMs: nowMs + directoryCacheTtlMs });
    return record;
  }
}
