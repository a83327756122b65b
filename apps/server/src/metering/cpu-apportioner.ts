import { allocateLargestRemainder } from './billing/allocation.ts';

/**
 * CPU time per tenant without a syscall per request. `process.cpuUsage()` is process-wide,
 * so a delta taken around one request would also count every request that ran concurrently.
 * Instead each request adds its wall time to its tenant's weight for the current window;
 * at each tick (the recorder's flush interval) the process CPU used during the window is
 * apportioned to the tenants by those weights with largest-remainder rounding, so the
 * tenants' compute microseconds add up exactly to the CPU the process spent while serving
 * them. CPU of a window with no tenant requests (sampling, flushing, idle) is platform
 * overhead and is not attributed. See docs/metering-and-billing.md.
 */
export interface CpuShare {
  tenantId: string;
  tier: string;
  computeUs: number;
}

export class CpuApportioner {
  readonly #weights = new Map<string, { tier: string; wallUs: number }>();
  readonly #readCpuUs: () => number;
  #lastCpuUs: number;

  constructor(readCpuUs: () => number = processCpuUs) {
    this.#readCpuUs = readCpuUs;
    this.#lastCpuUs = readCpuUs();
  }

  /** Adds a finished request's wall time to its tenant's weight in the current window. */
  addRequest(tenantId: string, tier: string, wallUs: number): void {
    const entry = this.#weights.get(tenantId);
    if (entry) entry.wallUs += wallUs;
    else this.#weights.set(tenantId, { tier, wallUs });
  }

  /** Closes the window: the CPU spent since the last tick, shared by the window's weights. */
  tick(): CpuShare[] {
    const nowCpuUs = this.#readCpuUs();
    const spentUs = Math.max(0, nowCpuUs - this.#lastCpuUs);
    this.#lastCpuUs = nowCpuUs;
    const entries = [...this.#weights.entries()].sort(([a], [b]) => (a < b ? -1 : 1));
    this.#weights.clear();
    const shares = allocateLargestRemainder(
      BigInt(Math.round(spentUs)),
      entries.map(([, entry]) => BigInt(Math.max(1, Math.round(entry.wallUs)))),
    );
    if (shares === null) return [];
    return entries
      .map(([tenantId, entry], index) => ({ tenantId, tier: entry.tier, computeUs: Number(shares[index] ?? 0n) }))
      .filter((share) => share.computeUs > 0);
  }
}

function processCpuUs(): number {
  const usage = process.cpuUsage();
  return usage.user + usage.system;
}
