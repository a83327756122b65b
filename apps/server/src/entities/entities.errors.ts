/** Errors of client entities. */
export const entitiesErrors = {
  ENTITY_NOT_FOUND: { status: 404, title: 'The client entity does not exist.' },
  ENTITY_NAME_TAKEN: { status: 409, title: 'A client entity with this name already exists.' },
} as const;
