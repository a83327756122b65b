/** Errors of batch jobs and the entity import. */
export const jobsErrors = {
  JOB_NOT_FOUND: { status: 404, title: 'The job does not exist.' },
  JOB_ALREADY_FINISHED: { status: 409, title: 'The job has already finished and cannot be cancelled.' },
  IMPORT_CSV_INVALID: { status: 400, title: 'The CSV could not be read.' },
  IMPORT_EMPTY: { status: 400, title: 'The import holds no rows.' },
  IMPORT_TOO_MANY_ROWS: { status: 413, title: 'The import holds more rows than allowed.' },
} as const;
