import type { ErrorCode } from '../platform/errors.ts';
import { type Action, apiKeyMay, type Role, roleMay, ruleOf } from './access.ts';
import { identityLimits } from './identity.limits.ts';
import type { MfaStanding } from './tokens.ts';

/** What the authorisation decision needs to know about a verified caller. */
export type CallerFacts =
  | {
      kind: 'user';
      role: Role;
      mfa: MfaStanding;
      amr: readonly string[];
      authTimeSeconds: number;
    }
  | { kind: 'apiKey'; scope: 'read' | 'write' };

/** Methods that count as a second factor in `amr` (RFC 8176; Cognito and others use `mfa`). */
const secondFactorMethods: readonly string[] = ['otp', 'mfa', 'hwk', 'swk', 'sms'];

export function hasSecondFactor(amr: readonly string[]): boolean {
  return amr.some((method) => secondFactorMethods.includes(method));
}

/**
 * The access decision for one request, a pure function of the caller and the route's action:
 * null to allow, or the error code to refuse with. Order matters: a user who must enrol in
 * MFA reaches only their own MFA routes; then the role (or key scope) must allow the action;
 * then a sensitive action needs a recent second factor from anyone who has MFA.
 */
export function authorize(caller: CallerFacts, action: Action, nowSeconds: number): ErrorCode | null {
  if (caller.kind === 'apiKey') return apiKeyMay(caller.scope, action) ? null : 'AUTH_FORBIDDEN';
  const rule = ruleOf(action);
  if (caller.mfa === 'enrol' && rule.kind !== 'self') return 'AUTH_MFA_ENROLMENT_REQUIRED';
  if (!roleMay(caller.role, action)) return 'AUTH_FORBIDDEN';
  if (rule.stepUp && caller.mfa !== 'none') {
    const recent = nowSeconds - caller.authTimeSeconds <= identityLimits.stepUpMaxAgeSeconds;
    if (!hasSecondFactor(caller.amr) || !recent) return 'AUTH_STEP_UP_REQUIRED';
  }
  return null;
}
