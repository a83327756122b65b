import type { RegulatoryTier } from '../tenancy/tenancy.types.ts';
import type { Tier } from '../tenancy/tiers.ts';
import type { Role } from './access.ts';

/**
 * Who must use a second factor: every user of a firm whose tier says so, every user of a
 * firm in a listed regulatory tier (by default `irs-authorized` and `sec-registered`, the
 * FTC Safeguards Rule and SEC Regulation S-P firms), and every user holding a listed role.
 */
export class MfaPolicy {
  readonly #regulatoryTiers: ReadonlySet<string>;
  readonly #roles: ReadonlySet<string>;

  constructor(regulatoryTiers: readonly string[], roles: readonly string[]) {
    this.#regulatoryTiers = new Set(regulatoryTiers);
    this.#roles = new Set(roles);
  }

  requiredFor(tier: Pick<Tier, 'mfaRequired'> | undefined, regulatoryTier: RegulatoryTier, role: Role): boolean {
    return tier?.mfaRequired === true || this.#regulatoryTiers.has(regulatoryTier) || this.#roles.has(role);
  }
}
