/**
 * CSV export (RFC 4180): a header row, then one row per record; fields with a comma, quote,
 * CR or LF are quoted and quotes doubled. A field starting with = + - @ (or tab/CR) is
 * prefixed with a single quote so a spreadsheet does not run it as a formula, except plain
 * negative numbers, which stay numbers.
 */
export type CsvValue = string | number | bigint | boolean | null;

function field(value: CsvValue): string {
  if (value === null) return '';
  let text = String(value);
  if (/^[=+\-@\t\r]/.test(text) && !/^-\d+(\.\d+)?$/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

export function toCsv(header: readonly string[], rows: ReadonlyArray<readonly CsvValue[]>): string {
  return [header, ...rows]
    .map((row) => row.map(field).join(','))
    .join('\r\n')
    .concat('\r\n');
}
