/** Errors of the audit log. */
export const auditErrors = {
  AUDIT_FILTER_INVALID: { status: 400, title: 'The audit filter is not valid.' },
} as const;
