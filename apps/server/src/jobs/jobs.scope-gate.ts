import type { TenantScopeGate } from '../platform/database/tenant-scope.ts';

/** Interactive load on this instance, as the limits domain sees it (LimitsService). */
export interface InteractiveLoad {
  /** True once no interactive request is in flight; false after `waitMsMax` without such a moment. */
  interactiveLull(waitMsMax: number): Promise<boolean>;
}

/**
 * The scope gate of job handlers: before each of a job's tenant transactions (a chunk of its
 * work) it waits for a moment with no interactive request in flight on this instance, at most
 * `waitMsMax`, then passes the tenant's own gate (connection bulkhead, statement timeout).
 * So an import's inserts run in the gaps between requests instead of beside them, and keep
 * moving — at least one chunk per `waitMsMax` — when the gaps never come.
 */
export function batchScopeGate(gate: TenantScopeGate, load: InteractiveLoad, waitMsMax: number): TenantScopeGate {
  return {
    enterScope: async (tenant) => {
      await load.interactiveLull(waitMsMax);
      return await gate.enterScope(tenant);
    },
  };
}
