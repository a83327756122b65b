import { runIdempotent } from '../platform/database/idempotency.ts';
import type { TenantContext, TenantScopes } from '../platform/database/tenant-scope.ts';
import { AppError } from '../platform/errors.ts';
import { newUuid } from '../platform/ids.ts';
import { findEntity, insertEntity, listEntities } from './entities.store.ts';
import type { Entity, EntityPage, NewEntity } from './entities.types.ts';

/** Client entities of one firm. */
export class EntitiesService {
  readonly #scopes: TenantScopes;

  constructor(scopes: TenantScopes) {
    this.#scopes = scopes;
  }

  /**
   * Creates a client entity; with an idempotency key a retry returns the first result.
   * Errors: ENTITY_NAME_TAKEN, IDEMPOTENCY_KEY_INVALID, IDEMPOTENCY_KEY_REUSED.
   */
  async create<Body>(
    tenant: TenantContext,
    userId: string,
    input: NewEntity,
    idempotencyKey: string | undefined,
    render: (entity: Entity) => Body,
  ): Promise<{ status: number; body: Body; replayed: boolean }> {
    return await this.#scopes.run(tenant, (db) =>
      runIdempotent(db, idempotencyKey, 'POST /v1/entities', input, async () => {
        const now = new Date();
        const entity: Entity = {
          id: newUuid(),
          name: input.name.trim(),
          entityType: input.entityType ?? null,
          baseCurrency: input.baseCurrency ?? 'USD',
          fiscalYearEnd: input.fiscalYearEnd ?? '12-31',
          status: 'active',
          createdBy: userId,
          createdAt: now,
          updatedAt: now,
        };
        if ((await insertEntity(db, entity)) === 'name_taken') {
          throw new AppError('ENTITY_NAME_TAKEN', `A client entity named "${entity.name}" already exists.`);
        }
        return { status: 201, body: render(entity) };
      }),
    );
  }

  /** Errors: ENTITY_NOT_FOUND (also for another tenant's entity, so existence is not revealed). */
  async get(tenant: TenantContext, id: string): Promise<Entity> {
    const entity = await this.#scopes.run(tenant, (db) => findEntity(db, id));
    if (!entity) throw new AppError('ENTITY_NOT_FOUND');
    return entity;
  }

  async list(tenant: TenantContext, afterId: string | null, limit: number): Promise<EntityPage> {
    return await this.#scopes.run(tenant, (db) => listEntities(db, afterId, limit));
  }
}
