import type { TenantScopeGate } from '../platform/database/tenant-scope.ts';

/** Interactive load on this instance, as the limits domain sees it (LimitsService). */
export interface InteractiveLoad {
  /** Batch work's turn before one transaction: resolves with the turn's end (limits/batch-yield.ts). */
  batchTurn(lullWaitMsMax: number): Promise<() => void>;
}

/**
 * The scope gate of job handlers: before each of a job's tenant transactions (a chunk of its
 * work) it takes batch work's turn on this instance — while firms are using the instance, one
 * batch transaction at a time within the batch share, each started in a lull between
 * interactive requests (waiting at most `lullWaitMsMax`) — then passes the tenant's own gate
 * (connection bulkhead, statement timeout). The turn ends when the transaction does. So an
 * import's inserts run in the gaps between requests, at a bounded share of the instance,
 * and at full speed when nobody else is there.
 */
export function batchScopeGate(gate: TenantScopeGate, load: InteractiveLoad, lullWaitMsMax: number): TenantScopeGate {
  return {
    enterScope: async (tenant) => {
      const endTurn = await load.batchTurn(lullWaitMsMax);
      try {
        const pass = await gate.enterScope(tenant);
        return {
          ...pass,
          leave: () => {
            pass.leave();
            endTurn();
          },
        };
      } catch (error) {
        endTurn();
        throw error;
      }
    },
  };
}
