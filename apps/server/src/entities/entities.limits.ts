export const entityLimits = {
  nameLengthMax: 200,
  pageSizeDefault: 50,
  pageSizeMax: 200,
} as const;
