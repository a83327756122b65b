import { changedFields, recordAuditEvent } from '../audit/audit.service.ts';
import { runIdempotent } from '../platform/database/idempotency.ts';
import type { TenantContext, TenantScopes } from '../platform/database/tenant-scope.ts';
import { AppError } from '../platform/errors.ts';
import { formatId, newUuid } from '../platform/ids.ts';
import type { Sealer } from '../platform/local-secrets.ts';
import { findEntity, findEntityForUpdate, insertEntity, listEntities, updateEntity } from './entities.store.ts';
import type { ChartSeeder, Entity, EntityChanges, EntityPage, NewEntity } from './entities.types.ts';

/** The nine digits of an EIN or SSN/ITIN, whatever dashes the client used. */
function taxpayerDigits(taxpayerId: string): string {
  return taxpayerId.replaceAll('-', '');
}

/** An archive or reactivation is its own audit action; any other change is an update. */
function entityChangeAction(before: Entity['status'], after: Entity['status']): string {
  if (before === after) return 'entity.update';
  return after === 'archived' ? 'entity.archive' : 'entity.reactivate';
}

/** Client entities of one firm. */
export class EntitiesService {
  readonly #scopes: TenantScopes;
  readonly #sealer: Sealer;
  readonly #charts: ChartSeeder | null;

  constructor(scopes: TenantScopes, sealer: Sealer, charts: ChartSeeder | null = null) {
    this.#scopes = scopes;
    this.#sealer = sealer;
    this.#charts = charts;
  }

  /**
   * Creates a client entity, with its chart from a template when one is named; with an
   * idempotency key a retry returns the first result. The taxpayer id is sealed at rest.
   * Errors: ENTITY_NAME_TAKEN, CHART_TEMPLATE_NOT_FOUND, IDEMPOTENCY_KEY_INVALID, IDEMPOTENCY_KEY_REUSED.
   */
  async create<Body>(
    tenant: TenantContext,
    userId: string,
    input: NewEntity,
    idempotencyKey: string | undefined,
    render: (entity: Entity) => Body,
  ): Promise<{ status: number; body: Body; replayed: boolean }> {
    const template = input.chartTemplate;
    if (template !== undefined && !this.#charts?.has(template)) throw new AppError('CHART_TEMPLATE_NOT_FOUND');
    const digits = input.taxpayerId === undefined ? null : taxpayerDigits(input.taxpayerId);
    return await this.#scopes.run(tenant, (db) =>
      runIdempotent(db, idempotencyKey, 'POST /v1/entities', input, async () => {
        const now = new Date();
        const entity: Entity = {
          id: newUuid(),
          name: input.name.trim(),
          legalName: input.legalName?.trim() ?? null,
          taxpayerIdLast4: digits?.slice(-4) ?? null,
          entityType: input.entityType ?? null,
          baseCurrency: input.baseCurrency ?? 'USD',
          fiscalYearEnd: input.fiscalYearEnd ?? '12-31',
          status: 'active',
          createdBy: userId,
          createdAt: now,
          updatedAt: now,
        };
        const sealed = digits === null ? null : this.#sealer.seal(digits);
        if ((await insertEntity(db, entity, sealed)) === 'name_taken') {
          throw new AppError('ENTITY_NAME_TAKEN', `A client entity named "${entity.name}" already exists.`);
        }
        if (template !== undefined) await this.#charts?.apply(db, entity.id, template);
        await recordAuditEvent(db, {
          action: 'entity.create',
          entityId: entity.id,
          resource: { type: 'entity', id: formatId('entity', entity.id) },
          after: entity,
          summary: { name: entity.name, chartTemplate: template ?? null },
        });
        return { status: 201, body: render(entity) };
      }),
    );
  }

  /**
   * Renames, sets the legal name or taxpayer id, archives or reactivates an entity.
   * Errors: ENTITY_NOT_FOUND, ENTITY_NAME_TAKEN.
   */
  async update(tenant: TenantContext, id: string, changes: EntityChanges): Promise<Entity> {
    return await this.#scopes.run(tenant, async (db) => {
      const entity = await findEntityForUpdate(db, id);
      if (!entity) throw new AppError('ENTITY_NOT_FOUND');
      const digits = changes.taxpayerId == null ? changes.taxpayerId : taxpayerDigits(changes.taxpayerId);
      const taxpayer =
        digits === undefined
          ? undefined
          : { sealed: digits === null ? null : this.#sealer.seal(digits), last4: digits?.slice(-4) ?? null };
      const updated = await updateEntity(
        db,
        id,
        {
          name: changes.name?.trim() ?? entity.name,
          legalName: changes.legalName === undefined ? entity.legalName : (changes.legalName?.trim() ?? null),
          status: changes.status ?? entity.status,
        },
        taxpayer,
      );
      if (updated === 'name_taken') throw new AppError('ENTITY_NAME_TAKEN');
      if (!updated) throw new AppError('ENTITY_NOT_FOUND');
      await recordAuditEvent(db, {
        action: entityChangeAction(entity.status, updated.status),
        entityId: id,
        resource: { type: 'entity', id: formatId('entity', id) },
        before: entity,
        after: updated,
        summary: { fields: changedFields(changes) },
      });
      return updated;
    });
  }

  /** Errors: ENTITY_NOT_FOUND (also for another tenant's entity, so existence is not revealed). */
  async get(tenant: TenantContext, id: string): Promise<Entity> {
    const entity = await this.#scopes.runOne(tenant, (db) => findEntity(db, id));
    if (!entity) throw new AppError('ENTITY_NOT_FOUND');
    return entity;
  }

  async list(tenant: TenantContext, afterId: string | null, limit: number): Promise<EntityPage> {
    return await this.#scopes.runOne(tenant, (db) => listEntities(db, afterId, limit));
  }
}
