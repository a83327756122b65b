/**
 * The access table: which role may perform which action. Every tenant route declares its
 * action in its config (`config: { ...requirePermission('ledger.journal.post') }`), and the
 * authentication hook refuses a tenant route that declares none (fail closed), so a new
 * route cannot be reachable by every role by accident.
 *
 * Which rows a permitted caller reaches is a separate, database-held condition: staff and
 * client users get an entity scope (their assigned entities) that PostgreSQL enforces with
 * the RESTRICTIVE `entity_visible()` policy, so a route that forgets to check is still safe.
 */

export const roles = ['owner', 'partner', 'manager', 'staff', 'client', 'auditor'] as const;
export type Role = (typeof roles)[number];

export function isRole(value: string): value is Role {
  return (roles as readonly string[]).includes(value);
}

/** Roles whose users see only the client entities assigned to them (client: exactly one). */
export const entityScopedRoles: readonly Role[] = ['staff', 'client'];

/** Roles an owner or partner may grant; only an owner grants owner. */
export const roleGrants: Readonly<Record<Role, readonly Role[]>> = {
  owner: roles,
  partner: ['partner', 'manager', 'staff', 'client', 'auditor'],
  manager: [],
  staff: [],
  client: [],
  auditor: [],
};

/**
 * How an action is used: `read` never changes data (the auditor's and read API keys' whole
 * world); `write` changes books; `admin` administers people, keys and access (never by an
 * API key); `self` concerns the caller's own sign-in (MFA enrolment, sign-out).
 */
export type ActionKind = 'read' | 'write' | 'admin' | 'self';

export interface ActionRule {
  kind: ActionKind;
  roles: readonly Role[];
  /** A sensitive operation: needs a recent second factor from anyone who has MFA (step-up). */
  stepUp?: true;
}

const everyone: readonly Role[] = roles;
const firmStaff: readonly Role[] = ['owner', 'partner', 'manager', 'staff'];
const firmReaders: readonly Role[] = ['owner', 'partner', 'manager', 'staff', 'auditor'];
const firmManagers: readonly Role[] = ['owner', 'partner', 'manager'];
const firmPartners: readonly Role[] = ['owner', 'partner'];

export const accessTable = {
  // Client entities and their import.
  'entities.read': { kind: 'read', roles: everyone },
  'entities.create': { kind: 'write', roles: firmManagers },
  'entities.update': { kind: 'write', roles: firmManagers },
  'entities.import': { kind: 'write', roles: firmManagers },
  // Jobs are firm-wide work (imports); a client portal user has no business there.
  'jobs.read': { kind: 'read', roles: firmReaders },
  'jobs.cancel': { kind: 'write', roles: firmManagers },
  // The firm's own usage and cost figures.
  'usage.read': { kind: 'read', roles: ['owner', 'partner', 'auditor'] },
  // The ledger.
  'ledger.templates.read': { kind: 'read', roles: everyone },
  'ledger.accounts.read': { kind: 'read', roles: everyone },
  'ledger.accounts.write': { kind: 'write', roles: firmStaff },
  'ledger.journal.read': { kind: 'read', roles: everyone },
  'ledger.journal.post': { kind: 'write', roles: firmStaff },
  'ledger.journal.reverse': { kind: 'write', roles: firmStaff },
  'ledger.periods.read': { kind: 'read', roles: everyone },
  'ledger.periods.close': { kind: 'write', roles: firmManagers },
  'ledger.periods.reopen': { kind: 'write', roles: firmPartners, stepUp: true },
  'ledger.fiscalYear.close': { kind: 'write', roles: firmManagers },
  'ledger.checklist.read': { kind: 'read', roles: firmReaders },
  'ledger.checklist.write': { kind: 'write', roles: firmStaff },
  'ledger.adjustments.read': { kind: 'read', roles: firmReaders },
  'ledger.adjustments.prepare': { kind: 'write', roles: firmStaff },
  'ledger.adjustments.comment': { kind: 'write', roles: firmStaff },
  'ledger.adjustments.approve': { kind: 'write', roles: firmManagers },
  'ledger.adjustments.post': { kind: 'write', roles: firmStaff },
  'ledger.reports.read': { kind: 'read', roles: everyone },
  'ledger.rates.read': { kind: 'read', roles: everyone },
  'ledger.rates.write': { kind: 'write', roles: firmStaff },
  // Bulk export of the firm's data (audit log export, tenant export): step-up.
  'data.export': { kind: 'read', roles: ['owner', 'partner', 'auditor'], stepUp: true },
  // The audit log.
  'audit.read': { kind: 'read', roles: ['owner', 'partner', 'auditor'] },
  // People, roles, assignments, invitations and API keys.
  'identity.users.read': { kind: 'admin', roles: firmManagers },
  'identity.users.invite': { kind: 'admin', roles: firmPartners },
  'identity.users.changeRole': { kind: 'admin', roles: firmPartners, stepUp: true },
  'identity.users.assign': { kind: 'admin', roles: firmPartners },
  'identity.users.disable': { kind: 'admin', roles: firmPartners, stepUp: true },
  'identity.apiKeys.manage': { kind: 'admin', roles: firmPartners },
  // The caller's own sign-in: MFA enrolment, step-up, sign-out. Allowed while MFA enrolment is pending.
  'identity.self': { kind: 'self', roles: everyone },
} as const satisfies Record<string, ActionRule>;

export type Action = keyof typeof accessTable;

export function isAction(value: unknown): value is Action {
  return typeof value === 'string' && Object.hasOwn(accessTable, value);
}

export function ruleOf(action: Action): ActionRule {
  return accessTable[action];
}

/** Whether a user holding `role` may perform `action` (before entity scope and MFA). */
export function roleMay(role: Role, action: Action): boolean {
  return (accessTable[action].roles as readonly Role[]).includes(role);
}

/** Whether an API key of this scope may perform the action: never admin or step-up actions. */
export function apiKeyMay(scope: 'read' | 'write', action: Action): boolean {
  const rule: ActionRule = accessTable[action];
  if (rule.stepUp) return false;
  if (rule.kind === 'read') return true;
  return rule.kind === 'write' && scope === 'write';
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The access-table action a tenant route performs; the auth hook refuses routes without one. */
    permission?: Action;
    /** The action when the request asks for a bulk export (`?format=csv` or `jsonl`), e.g. `data.export`. */
    exportPermission?: Action;
  }
}

/** Query formats that turn a listing into a bulk export. */
export const exportFormats: readonly string[] = ['csv', 'jsonl'];

/**
 * Route config naming the action: `config: { ...requirePermission('entities.read') }`. A
 * listing that can also export in bulk names the export action too, so the export needs its
 * roles and step-up: `requirePermission('audit.read', { export: 'data.export' })`.
 */
export function requirePermission(
  action: Action,
  options: { export?: Action } = {},
): { permission: Action; exportPermission?: Action } {
  return options.export === undefined
    ? { permission: action }
    : { permission: action, exportPermission: options.export };
}
