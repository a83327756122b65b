import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import { assert } from '../assert.ts';
import { AppError } from '../errors.ts';
import { queryOpening, type ScopeSettings } from './opening-query.ts';

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

/** Who acts on the tenant's data; the audit log records it (audit/audit.types.ts). */
export interface AuditActor {
  kind: 'user' | 'api_key' | 'operator' | 'system' | 'anonymous';
  /** A public id (`usr_…`, `opr_…`) or a name such as `bootstrap` or `job-worker`. */
  id: string;
}

/** Where a change comes from: the actor, the request id and the caller's address. */
export interface RequestOrigin {
  actor: AuditActor;
  requestId: string | null;
  sourceAddress: string | null;
}

/** A verified tenant: built by the auth layer or the control plane, never from user input. */
export interface TenantContext {
  tenantId: string;
  tier: string;
  placement: TenantPlacement;
  entityScope: EntityScope;
  /** Set by the auth layer per request; without it, audit events name the system as actor. */
  origin?: RequestOrigin;
}

const uuidText = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function entityScopeSetting(scope: EntityScope): string {
  if (scope.kind === 'all') return '*';
  for (const id of scope.entityIds) assert(uuidText.test(id), 'entity scope holds uuids only');
  return `{${scope.entityIds.join(',')}}`;
}

/**
 * A statement prepared once per connection under its name and then only bound and run: for
 * the few statements every posting runs outside a function, whose planning each time (row-level
 * security expanded, the plan made afresh) cost more than their execution.
 */
export interface NamedStatement {
  name: string;
  text: string;
}

/** The handle a scope hands to stores: queries run inside the tenant's transaction. */
export interface TenantDb {
  readonly tenantId: string;
  /** The origin of the scope's tenant context, for the audit log; null for platform work. */
  readonly origin: RequestOrigin | null;
  query<Row extends pg.QueryResultRow = pg.QueryResultRow>(
    sql: string | NamedStatement,
    params?: unknown[],
  ): Promise<pg.QueryResult<Row>>;
}

/** Text or a named statement with its parameters, as node-postgres takes a query. */
export function queryConfig(sql: string | NamedStatement, params?: unknown[]): pg.QueryConfig {
  return typeof sql === 'string' ? { text: sql, values: params } : { name: sql.name, text: sql.text, values: params };
}

/** Runs text or a named statement on a connection. */
export function queryOn<Row extends pg.QueryResultRow>(
  client: pg.ClientBase,
  sql: string | NamedStatement,
  params?: unknown[],
): Promise<pg.QueryResult<Row>> {
  return client.query<Row>(queryConfig(sql, params));
}

/** Resolves a placement to the runtime-role pool that serves it. */
export interface RuntimePools {
  poolFor(placement: TenantPlacement): pg.Pool;
}

/** Told the wall time of every finished scope (metering's database time); must be cheap. */
export interface ScopeObserver {
  scopeFinished(tenant: TenantContext, durationUs: number): void;
}

/** What a gate grants a scope: the statement timeout to apply and the way back out. */
export interface TenantScopePass {
  statementTimeoutMs: number;
  leave(): void;
}

/**
 * Admission to a tenant scope, checked before a pooled connection is taken: the limits
 * domain caps the connections one tenant may hold (a bulkhead) and names its tier's
 * statement timeout. It may throw an AppError (a busy bulkhead).
 */
export interface TenantScopeGate {
  enterScope(tenant: TenantContext): Promise<TenantScopePass>;
}

/** No bulkhead and no statement timeout (0 = none): for tools and tests without limits. */
export const openScopeGate: TenantScopeGate = {
  enterScope: async () => ({ statementTimeoutMs: 0, leave: () => {} }),
};

/**
 * A write refused because the tenant's data is moving (SQLSTATE CH900, raised by the move's
 * capture triggers, 0012_lifecycle_move.sql): the transaction rolled back, so the caller may
 * retry shortly and the write is applied exactly once, on the new placement.
 */
function tenantMovingError(error: unknown): AppError | null {
  if (!(error instanceof Error) || (error as { code?: unknown }).code !== 'CH900') return null;
  return new AppError('TENANT_MOVING', (error as { detail?: string }).detail, { retryAfterSeconds: 1 });
}

/**
 * The pool had no connection free within its connection timeout (pg-pool's own message): the
 * instance is overloaded, which the caller may retry, not an unexpected error.
 */
function databaseBusyError(error: unknown): AppError | null {
  if (!(error instanceof Error) || error.message !== 'timeout exceeded when trying to connect') return null;
  return new AppError('DATABASE_BUSY', undefined, { retryAfterSeconds: 1 });
}

/** Whether a scope's work may run several statements, or exactly one (committed with it). */
type Statements = 'many' | 'one';

export class TenantScopes {
  readonly #pools: RuntimePools;
  readonly #gate: TenantScopeGate;
  readonly #observer: ScopeObserver | null;

  constructor(pools: RuntimePools, gate: TenantScopeGate = openScopeGate, observer: ScopeObserver | null = null) {
    this.#pools = pools;
    this.#gate = gate;
    this.#observer = observer;
  }

  /**
   * Runs `work` in one transaction scoped to the tenant; commits on success, rolls back on
   * throw. The gate is passed first, so a tenant at its connection cap waits (bounded)
   * without holding a pooled connection.
   */
  async run<T>(tenant: TenantContext, work: (db: TenantDb) => Promise<T>): Promise<T> {
    return await this.#run(tenant, 'many', work);
  }

  /**
   * As `run`, for work that runs exactly one statement: the scope opens, runs it and commits
   * in one round trip, where `run` takes a second for the commit. For the reads every page
   * of the product makes (one entity, a list page), that round trip was a third of the
   * server's time per request. A second statement is a programming error and is refused.
   */
  async runOne<T>(tenant: TenantContext, work: (db: TenantDb) => Promise<T>): Promise<T> {
    return await this.#run(tenant, 'one', work);
  }

  async #run<T>(tenant: TenantContext, statements: Statements, work: (db: TenantDb) => Promise<T>): Promise<T> {
    assert(tenant.tenantId.length === 36, 'tenant scope needs a tenant uuid');
    const pass = await this.#gate.enterScope(tenant);
    try {
      return await this.#runConnected(tenant, pass.statementTimeoutMs, statements, work);
    } catch (error) {
      throw tenantMovingError(error) ?? databaseBusyError(error) ?? error;
    } finally {
      pass.leave();
    }
  }

  async #runConnected<T>(
    tenant: TenantContext,
    statementTimeoutMs: number,
    statements: Statements,
    work: (db: TenantDb) => Promise<T>,
  ): Promise<T> {
    assert(Number.isInteger(statementTimeoutMs) && statementTimeoutMs >= 0, 'statement timeout is whole milliseconds');
    const client = await this.#pools.poolFor(tenant.placement).connect();
    // Database time is the time the scope holds a connection, not the wait for one.
    const startedMs = performance.now();
    let released = false;
    let opened = false;
    let committed = false;
    try {
      assert(uuidText.test(tenant.tenantId), 'tenant id is a uuid');
      const settings: ScopeSettings = {
        text: `select set_config('app.tenant_id', $1, true) as tenant, set_config('app.entity_scope', $2, true),
                      set_config('statement_timeout', $3, true)`,
        values: [tenant.tenantId, entityScopeSetting(tenant.entityScope), String(statementTimeoutMs)],
        expected: tenant.tenantId,
      };
      // The scope opens with its first query, in the same round trip (opening-query.ts); a
      // scope that queries nothing opens no transaction.
      const db: TenantDb = {
        tenantId: tenant.tenantId,
        origin: tenant.origin ?? null,
        query: <Row extends pg.QueryResultRow>(sql: string | NamedStatement, params?: unknown[]) => {
          if (opened) {
            assert(statements === 'many', 'a runOne scope runs one statement');
            return queryOn<Row>(client, sql, params);
          }
          opened = true;
          if (statements === 'many') return queryOpening<Row>(client, settings, queryConfig(sql, params));
          return queryOpening<Row>(client, settings, queryConfig(sql, params), true).then((result) => {
            committed = true;
            return result;
          });
        },
      };
      const result = await work(db);
      if (opened && statements === 'many') await client.query('commit');
      return result;
    } catch (error) {
      // A failed rollback means the connection is broken: destroy it rather than reuse it.
      if (opened && !committed) {
        await client.query('rollback').catch((rollbackError: unknown) => {
          client.release(rollbackError instanceof Error ? rollbackError : true);
          released = true;
        });
      }
      throw error;
    } finally {
      if (!released) client.release();
      this.#observer?.scopeFinished(tenant, Math.round((performance.now() - startedMs) * 1_000));
    }
  }
}
