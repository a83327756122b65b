/** Errors of named operators (control plane). */
export const operatorsErrors = {
  OPERATOR_NAME_TAKEN: { status: 409, title: 'An operator with this name already exists.' },
  OPERATOR_NOT_FOUND: { status: 404, title: 'There is no such operator.' },
  OPERATOR_BOOTSTRAP_ONLY: { status: 403, title: 'Only the bootstrap operator may manage operators.' },
} as const;
