import { describe, expect, it } from 'vitest';
import { authorize, type CallerFacts } from './authorize.ts';
import { FailureCounter } from './sign-in-throttle.ts';

/** The access decision and the failure counter as pure units, on fixed clocks. */
const now = 1_800_000_000;

function user(overrides: Partial<Extract<CallerFacts, { kind: 'user' }>> = {}): CallerFacts {
  return { kind: 'user', role: 'partner', mfa: 'none', amr: ['pwd'], authTimeSeconds: now, ...overrides };
}

describe('authorize', () => {
  it('decides role, enrolment and step-up in that order', () => {
    const cases: Array<[string, CallerFacts, Parameters<typeof authorize>[1], string | null]> = [
      ['partner reopens without MFA', user(), 'ledger.periods.reopen', null],
      ['staff reopens', user({ role: 'staff' }), 'ledger.periods.reopen', 'AUTH_FORBIDDEN'],
      ['auditor posts', user({ role: 'auditor' }), 'ledger.journal.post', 'AUTH_FORBIDDEN'],
      ['enrolled partner, password only', user({ mfa: 'enrolled' }), 'ledger.periods.reopen', 'AUTH_STEP_UP_REQUIRED'],
      [
        'enrolled partner, old otp',
        user({ mfa: 'enrolled', amr: ['pwd', 'otp'], authTimeSeconds: now - 601 }),
        'ledger.periods.reopen',
        'AUTH_STEP_UP_REQUIRED',
      ],
      ['enrolled partner, fresh otp', user({ mfa: 'enrolled', amr: ['pwd', 'otp'] }), 'ledger.periods.reopen', null],
      ['enrolled, ordinary read', user({ mfa: 'enrolled' }), 'entities.read', null],
      ['must enrol, reads data', user({ mfa: 'enrol' }), 'entities.read', 'AUTH_MFA_ENROLMENT_REQUIRED'],
      ['must enrol, own MFA', user({ mfa: 'enrol' }), 'identity.self', null],
      [
        'must enrol, wrong role still enrolment first',
        user({ mfa: 'enrol', role: 'client' }),
        'jobs.cancel',
        'AUTH_MFA_ENROLMENT_REQUIRED',
      ],
      ['read key reads', { kind: 'apiKey', scope: 'read' }, 'ledger.reports.read', null],
      ['read key writes', { kind: 'apiKey', scope: 'read' }, 'ledger.journal.post', 'AUTH_FORBIDDEN'],
      ['write key writes', { kind: 'apiKey', scope: 'write' }, 'ledger.journal.post', null],
      ['write key administers', { kind: 'apiKey', scope: 'write' }, 'identity.apiKeys.manage', 'AUTH_FORBIDDEN'],
      ['write key step-up action', { kind: 'apiKey', scope: 'write' }, 'ledger.periods.reopen', 'AUTH_FORBIDDEN'],
      ['read key exports', { kind: 'apiKey', scope: 'read' }, 'data.export', 'AUTH_FORBIDDEN'],
    ];
    for (const [name, caller, action, expected] of cases) expect(authorize(caller, action, now), name).toBe(expected);
  });
});

describe('FailureCounter', () => {
  it('blocks at the limit for the rest of the window, then forgets', () => {
    let clockMs = 0;
    const counter = new FailureCounter(3, 1_000, 2, () => clockMs);
    expect(counter.fail('a')).toBe(false);
    expect(counter.fail('a')).toBe(false);
    expect(counter.blockedForMs('a')).toBe(0);
    expect(counter.fail('a')).toBe(true);
    clockMs = 400;
    expect(counter.blockedForMs('a')).toBe(600);
    clockMs = 1_000;
    expect(counter.blockedForMs('a')).toBe(0);
  });

  it('stays within its size bound by dropping the oldest key', () => {
    const counter = new FailureCounter(1, 1_000, 2, () => 0);
    counter.fail('a');
    counter.fail('b');
    counter.fail('c');
    expect(counter.blockedForMs('a')).toBe(0);
    expect(counter.blockedForMs('c')).toBe(1_000);
  });
});
