import type { JobKind, JsonValue } from '../../jobs/jobs.types.ts';
import { PermanentJobError } from '../../jobs/jobs.types.ts';
import { assert } from '../../platform/assert.ts';
import type { TenantPlacement } from '../../platform/database/tenant-scope.ts';
import type { MoveOptions } from '../move-engine.ts';
import { samePlacement } from '../placements.ts';
import { tenantDataLimits } from '../tenant-data.limits.ts';
import { type TenantDataService, tierChangeKind } from '../tenant-data.service.ts';
import type { TierChange } from '../tenant-data.types.ts';

/**
 * `tenant.tier-change`: moves the tenant's rows to the placement of its new tier while it keeps
 * serving, then flips the registry (docs/tier-changes.md). A change between tiers that share the
 * placement flips the tier alone. Any failure before the flip rolls back to the source with
 * nothing lost, and the change is recorded as failed; it is not retried by itself.
 */
interface TierChangePayload {
  changeId: string;
}

function parsePayload(payload: JsonValue): TierChangePayload {
  assert(
    typeof payload === 'object' && payload !== null && !Array.isArray(payload),
    'tier change payload is an object',
  );
  const { changeId } = payload;
  assert(typeof changeId === 'string' && /^[0-9a-f-]{36}$/.test(changeId), 'tier change payload names its change');
  return { changeId };
}

/** Runs one tier change: the job's handler, also callable directly (tests, benchmark). */
export async function runTierChange(
  service: TenantDataService,
  change: TierChange,
  signal: AbortSignal,
  testHooks: Pick<MoveOptions, 'failAt'> = {},
): Promise<Record<string, unknown>> {
  const { store } = service;
  await store.updateTierChange(change.id, { status: 'running', phase: 'preparing' });
  let target: TenantPlacement | null = null;
  try {
    target = await service.targetPlacement(change);
    await store.updateTierChange(change.id, { targetPlacement: target });
    if (samePlacement(change.sourcePlacement, target)) {
      const schema = await service.databases.schemaOf(target);
      if (!(await store.flipPlacement(change.tenantId, change.sourcePlacement, { ...target, schema }, change.toTier))) {
        throw new Error('the tenant left the source placement during the change');
      }
      service.forgetCachedTenant(change.tenantId);
      const result = { moved: false, rowsCopied: 0 };
      await store.updateTierChange(change.id, { status: 'succeeded', phase: 'done', result });
      return result;
    }
    const result = await service.moveTenant(change, target, signal, testHooks);
    await store.updateTierChange(change.id, { status: 'succeeded', phase: 'done', result });
    return result;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    // Before the change is marked failed, while it still holds the tenant's one running change.
    if (target !== null) await service.discardTarget(change, target);
    await store.updateTierChange(change.id, { status: 'failed', phase: 'rolled_back', error: message });
    throw new PermanentJobError(`tier change failed and was rolled back: ${message}`);
  }
}

export function tierChangeJob(service: TenantDataService): JobKind<TierChangePayload> {
  return {
    kind: tierChangeKind,
    parsePayload,
    maxAttempts: tenantDataLimits.moveMaxAttempts,
    timeoutMs: tenantDataLimits.jobTimeoutMs,
    async run(context) {
      const change = await service.store.findTierChange(context.job.tenantId, context.payload.changeId);
      if (!change) throw new PermanentJobError(`tier change ${context.payload.changeId} does not exist`);
      if (change.status === 'succeeded' || change.status === 'failed') return { status: change.status };
      return (await runTierChange(service, change, context.signal)) as JsonValue;
    },
  };
}
