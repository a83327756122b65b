import type { FastifyReply } from 'fastify';
import { Type } from 'typebox';

/**
 * Reports answer in several formats, chosen by `?format=` or, without it, by the Accept
 * header (its highest-q type this route serves; JSON when none matches). JSON goes through
 * the route's response schema like any reply; the others are sent as files.
 */
export const reportMediaTypes = {
  json: 'application/json',
  csv: 'text/csv',
  xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  pdf: 'application/pdf',
} as const;

export type ReportFormat = keyof typeof reportMediaTypes;

export function formatQuery(formats: readonly ReportFormat[]) {
  return Type.Optional(
    Type.Union(
      formats.map((format) => Type.Literal(format)),
      { description: `Overrides the Accept header: ${formats.join(', ')}.` },
    ),
  );
}

function acceptedTypes(accept: string): string[] {
  return accept
    .split(',')
    .map((part, index) => {
      const [type = '', ...parameters] = part.split(';').map((piece) => piece.trim().toLowerCase());
      const quality = parameters.find((parameter) => parameter.startsWith('q='));
      return { type, q: quality === undefined ? 1 : Number(quality.slice(2)) || 0, index };
    })
    .filter((entry) => entry.q > 0)
    .sort((left, right) => right.q - left.q || left.index - right.index)
    .map((entry) => entry.type);
}

export function negotiateFormat(
  format: ReportFormat | undefined,
  accept: string | undefined,
  formats: readonly ReportFormat[],
): ReportFormat {
  if (format !== undefined) return format;
  if (accept === undefined) return 'json';
  for (const type of acceptedTypes(accept)) {
    const match = formats.find((candidate) => reportMediaTypes[candidate] === type);
    if (match) return match;
    if (type === '*/*' || type === 'application/*') return 'json';
  }
  return 'json';
}

/** Renderers of one report, one per format the route serves; JSON is required. */
export type ReportRenderers = { json: () => unknown } & Partial<
  Record<Exclude<ReportFormat, 'json'>, () => string | Buffer | Promise<string | Buffer>>
>;

/**
 * Sends a report in the negotiated format: the JSON value is returned for the route's
 * serializer; files go out with their media type and a download name (`fileName.ext`).
 */
export async function sendReport(
  reply: FastifyReply,
  format: ReportFormat,
  fileName: string,
  renderers: ReportRenderers,
): Promise<unknown> {
  if (format === 'json') return renderers.json();
  const render = renderers[format];
  if (render === undefined) return renderers.json();
  const body = await render();
  const type = format === 'csv' ? `${reportMediaTypes.csv}; charset=utf-8` : reportMediaTypes[format];
  return reply
    .header('content-type', type)
    .header('content-disposition', `attachment; filename="${fileName}.${format}"`)
    .header('vary', 'Accept')
    .send(body);
}
