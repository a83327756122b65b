import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import { assert } from '../assert.ts';

/**
 * Token vending (ARCHITECTURE.md 5): the only path from application code to tenant rows.
 * A scope is vended for one verified tenant; it opens a transaction on the tenant's
 * placement and sets `app.tenant_id` transaction-locally with a bound parameter, so the
 * setting can never leak to another request through the pool. Row-level security then
 * limits every statement in the scope to that tenant, even one that forgets its WHERE.
 */

/** Where a tenant's rows live, from the tenant registry. */
export interface TenantPlacement {
  model: 'pool' | 'bridge' | 'silo';
  cluster: string;
  database: string;
}

/**
 * Which client entities of the tenant the caller may touch: the second row-level condition
 * (least privilege per client). Entity-owned tables carry a RESTRICTIVE policy on
 * `entity_visible(entity_id)`, which reads `app.entity_scope`: `*` for all entities, else a
 * uuid array literal. Unset, it matches no entity (fail closed).
 */
export type EntityScope = { kind: 'all' } | { kind: 'only'; entityIds: readonly string[] };

export const allEntities: EntityScope = { kind: 'all' };

/** A verified tenant: built by the auth layer or the control plane, never from user input. */
export interface TenantContext {
  tenantId: string;
  tier: string;
  placement: TenantPlacement;
  entityScope: EntityScope;
}

function entityScopeSetting(scope: EntityScope): string {
  if (scope.kind === 'all') return '*';
  for (const id of scope.entityIds) assert(/^[0-9a-f-]{36}$/.test(id), 'entity scope holds uuids only');
  return `{${scope.entityIds.join(',')}}`;
}

/** The handle a scope hands to stores: queries run inside the tenant's transaction. */
export interface TenantDb {
  readonly tenantId: string;
  query<Row extends pg.QueryResultRow = pg.QueryResultRow>(
    sql: string,
    params?: unknown[],
  ): Promise<pg.QueryResult<Row>>;
}

/** Resolves a placement to the runtime-role pool that serves it. */
export interface RuntimePools {
  poolFor(placement: TenantPlacement): pg.Pool;
}

/** Told the wall time of every finished scope (metering's database time); must be cheap. */
export interface ScopeObserver {
  scopeFinished(tenant: TenantContext, durationUs: number): void;
}

export class TenantScopes {
  readonly #pools: RuntimePools;
  readonly #observer: ScopeObserver | null;

  constructor(pools: RuntimePools, observer: ScopeObserver | null = null) {
    this.#pools = pools;
    this.#observer = observer;
  }

  /** Runs `work` in one transaction scoped to the tenant; commits on success, rolls back on throw. */
  async run<T>(tenant: TenantContext, work: (db: TenantDb) => Promise<T>): Promise<T> {
    assert(tenant.tenantId.length === 36, 'tenant scope needs a tenant uuid');
    const client = await this.#pools.poolFor(tenant.placement).connect();
    // Database time is the time the scope holds a connection, not the wait for one.
    const startedMs = performance.now();
    let released = false;
    try {
      await client.query('begin');
      const { rows } = await client.query<{ tenant: string }>(
        `select set_config('app.tenant_id', $1, true) as tenant, set_config('app.entity_scope', $2, true)`,
        [tenant.tenantId, entityScopeSetting(tenant.entityScope)],
      );
      assert(rows[0]?.tenant === tenant.tenantId, 'tenant setting did not take');
      const db: TenantDb = {
        tenantId: tenant.tenantId,
        query: (sql, params) => client.query(sql, params),
      };
      const result = await work(db);
      await client.query('commit');
      return result;
    } catch (error) {
      // A failed rollback means the connection is broken: destroy it rather than reuse it.
      await client.query('rollback').catch((rollbackError: unknown) => {
        client.release(rollbackError instanceof Error ? rollbackError : true);
        released = true;
      });
      throw error;
    } finally {
      if (!released) client.release();
      this.#observer?.scopeFinished(tenant, Math.round((performance.now() - startedMs) * 1_000));
    }
  }
}
