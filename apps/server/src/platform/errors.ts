import { auditErrors } from '../audit/audit.errors.ts';
import { entitiesErrors } from '../entities/entities.errors.ts';
import { identityErrors } from '../identity/identity.errors.ts';
import { jobsErrors } from '../jobs/jobs.errors.ts';
import { ledgerErrors } from '../ledger/ledger.errors.ts';
import { limitsErrors } from '../limits/limits.errors.ts';
import { meteringErrors } from '../metering/metering.errors.ts';
import { operatorsErrors } from '../operators/operators.errors.ts';
import { tenancyErrors } from '../tenancy/tenancy.errors.ts';
import { tenantDataErrors } from '../tenant-data/tenant-data.errors.ts';
import { platformErrors } from './platform.errors.ts';

/**
 * The one error catalogue, assembled from each domain's `<domain>.errors.ts`. Every expected
 * failure has a stable code, an HTTP status and a public title. Codes are never reused or
 * renamed. `docs/errors.md` is generated from this list (`npm run docs:errors`) and a test
 * fails when it is out of date.
 */
interface ErrorEntry {
  status: number;
  title: string;
}

const domainCatalogues: ReadonlyArray<Readonly<Record<string, ErrorEntry>>> = [
  platformErrors,
  identityErrors,
  tenancyErrors,
  tenantDataErrors,
  entitiesErrors,
  jobsErrors,
  limitsErrors,
  ledgerErrors,
  meteringErrors,
  auditErrors,
  operatorsErrors,
];

export const errorCatalogue = {
  ...platformErrors,
  ...identityErrors,
  ...tenancyErrors,
  ...tenantDataErrors,
  ...entitiesErrors,
  ...jobsErrors,
  ...limitsErrors,
  ...ledgerErrors,
  ...meteringErrors,
  ...auditErrors,
  ...operatorsErrors,
} as const satisfies Record<string, ErrorEntry>;

// A code defined by two domains would silently shadow one of them.
const definedCodes = domainCatalogues.flatMap((catalogue) => Object.keys(catalogue));
if (new Set(definedCodes).size !== definedCodes.length) {
  throw new Error(
    `duplicate error codes: ${definedCodes.filter((code, index) => definedCodes.indexOf(code) !== index).join(', ')}`,
  );
}

export type ErrorCode = keyof typeof errorCatalogue;

/** An expected, typed failure. Route code throws it; the HTTP layer renders problem+json. */
export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly detail: string | undefined;
  readonly extensions: Record<string, unknown>;

  constructor(code: ErrorCode, detail?: string, extensions: Record<string, unknown> = {}) {
    // A refusal of the caller's request (4xx) is an expected answer, not a fault: it carries no
    // stack, which costs more than the rest of the refusal (a flood of 429s would pay it on each).
    const stackTraceLimit = Error.stackTraceLimit;
    if (errorCatalogue[code].status < 500) Error.stackTraceLimit = 0;
    try {
      super(detail ?? errorCatalogue[code].title);
    } finally {
      Error.stackTraceLimit = stackTraceLimit;
    }
    this.name = 'AppError';
    this.code = code;
    this.status = errorCatalogue[code].status;
    this.detail = detail;
    this.extensions = extensions;
  }
}

export function isAppError(error: unknown): error is AppError {
  return error instanceof AppError;
}
