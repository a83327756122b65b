import { Ajv, type Options } from 'ajv';
import addFormatsModule from 'ajv-formats';

// ajv-formats ships CommonJS; under ESM its function may sit on `.default`.
const addFormats = ((addFormatsModule as unknown as { default?: typeof addFormatsModule }).default ??
  addFormatsModule) as unknown as (ajv: Ajv) => Ajv;

/**
 * Bodies are validated strictly: no type coercion (a number is not a string), no silent
 * removal of unknown fields (they are rejected), so a client learns of its mistake instead
 * of having data quietly changed. Query strings and path parameters arrive as text, so
 * they alone may be coerced to the declared scalar types.
 */
const shared: Options = {
  allErrors: false,
  useDefaults: true,
  removeAdditional: false,
  strict: false,
  allowUnionTypes: true,
};

function makeAjv(coerceTypes: boolean): Ajv {
  const ajv = new Ajv({ ...shared, coerceTypes });
  addFormats(ajv);
  return ajv;
}

/**
 * A validator factory rather than `setValidatorCompiler`: Fastify rebuilds the compiler for
 * every plugin that adds shared schemas and would silently fall back to its coercing default
 * there; a factory is used for every context and receives those shared schemas.
 */
export function buildValidator(externalSchemas: Record<string, unknown>) {
  const strictAjv = makeAjv(false);
  const coercingAjv = makeAjv(true);
  for (const schema of Object.values(externalSchemas)) {
    strictAjv.addSchema(schema as object);
    coercingAjv.addSchema(schema as object);
  }
  return ({ schema, httpPart }: { schema: unknown; httpPart?: string | undefined }) =>
    (httpPart === 'body' ? strictAjv : coercingAjv).compile(schema as object);
}
