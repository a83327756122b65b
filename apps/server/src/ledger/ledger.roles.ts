/**
 * Roles are checked by name: the identity issue owns the role catalogue (owner, partner,
 * manager, staff, client, auditor); the ledger only asks whether a principal holds one.
 */
export const reopenRoles = ['owner', 'partner'] as const;
export const approverRoles = ['owner', 'partner', 'manager'] as const;

export function holdsAny(roles: readonly string[], wanted: readonly string[]): boolean {
  return roles.some((role) => wanted.includes(role));
}
