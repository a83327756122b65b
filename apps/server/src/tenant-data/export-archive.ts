import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import tar from 'tar-stream';
import { inTenantMaintenance, rowOrder, tenantFilter } from './maintenance.ts';
import { quoteIdentifier, type TenantTable } from './tenant-tables.ts';

/**
 * A tenant's complete data as one tar.gz: `manifest.json` and one JSON Lines file per tenant
 * table (`tables/<table>.jsonl`, one row a line as PostgreSQL's own `to_jsonb`, ordered by
 * primary key). The manifest names each file with its row count, size and SHA-256, so a
 * receiver can check the archive without trusting it.
 */
export const exportFormat = 'countinghouse-tenant-export/1';

export interface ExportedTable {
  table: string;
  file: string;
  /** Where the rows were read: `control` or the placement's database. */
  databases: string[];
  rows: number;
  bytes: number;
  sha256: string;
}

export interface ExportManifest {
  format: typeof exportFormat;
  tenantId: string;
  exportId: string;
  createdAt: string;
  tables: ExportedTable[];
}

/** A database to read from, with the tables of the tenant that live there. */
export interface ExportSource {
  label: string;
  pool: pg.Pool;
  tables: readonly TenantTable[];
}

class LineCounter extends Transform {
  lines = 0;
  bytes = 0;
  readonly hash = createHash('sha256');

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    for (let index = chunk.indexOf(10); index !== -1; index = chunk.indexOf(10, index + 1)) this.lines += 1;
    this.bytes += chunk.length;
    this.hash.update(chunk);
    this.push(chunk);
    callback();
  }
}

/**
 * Streams one table's rows into `file` (appending when several databases hold the table).
 * COPY in CSV form with a quote and delimiter that never occur in jsonb text (control
 * characters are escaped there) writes each JSON document as is, one per line.
 */
async function copyTableRows(
  source: ExportSource,
  table: TenantTable,
  tenantId: string,
  counter: LineCounter,
  file: string,
): Promise<void> {
  const options = { replica: false, isolation: 'repeatable read', readOnly: true } as const;
  await inTenantMaintenance(source.pool, tenantId, options, async (client) => {
    const sql = `copy (select to_jsonb(t)::text from ${quoteIdentifier(table.name)} t
                        where ${tenantFilter(table, tenantId)} order by ${rowOrder(table)})
                 to stdout with (format csv, delimiter e'\\x02', quote e'\\x01')`;
    await pipeline(client.query(copyTo(sql)), counter, createWriteStream(file, { flags: 'a' }));
  });
}

async function exportTables(
  sources: readonly ExportSource[],
  tenantId: string,
  workDirectory: string,
  signal: AbortSignal,
  onTable: (done: number, total: number) => void,
): Promise<ExportedTable[]> {
  const names = [...new Set(sources.flatMap((source) => source.tables.map((table) => table.name)))].sort();
  const exported: ExportedTable[] = [];
  for (const [index, name] of names.entries()) {
    signal.throwIfAborted();
    const file = `tables/${name}.jsonl`;
    const counter = new LineCounter();
    const databases: string[] = [];
    const filePath = path.join(workDirectory, file);
    await fs.writeFile(filePath, '');
    for (const source of sources) {
      const table = source.tables.find((candidate) => candidate.name === name);
      if (!table) continue;
      databases.push(source.label);
      await copyTableRows(source, table, tenantId, counter, filePath);
    }
    exported.push({
      table: name,
      file,
      databases,
      rows: counter.lines,
      bytes: counter.bytes,
      sha256: counter.hash.digest('hex'),
    });
    onTable(index + 1, names.length);
  }
  return exported;
}

async function packArchive(workDirectory: string, manifest: ExportManifest, archivePath: string): Promise<void> {
  const pack = tar.pack();
  const written = pipeline(pack, createGzip(), createWriteStream(archivePath));
  const manifestText = `${JSON.stringify(manifest, null, 2)}\n`;
  pack.entry({ name: 'manifest.json', mode: 0o644 }, manifestText);
  for (const table of manifest.tables) {
    const entry = pack.entry({ name: table.file, size: table.bytes, mode: 0o644 });
    await pipeline(createReadStream(path.join(workDirectory, table.file)), entry);
  }
  pack.finalize();
  await written;
}

async function sha256OfFile(filePath: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(filePath), hash);
  return hash.digest('hex');
}

export interface WrittenExport {
  manifest: ExportManifest;
  sizeBytes: number;
  sha256: string;
}

/**
 * Writes the archive to `archivePath` (through a temporary file, so a crash never leaves a
 * half archive under the final name) and returns its manifest, size and SHA-256.
 */
export async function writeTenantExport(options: {
  sources: readonly ExportSource[];
  tenantId: string;
  exportId: string;
  archivePath: string;
  signal: AbortSignal;
  onTable: (done: number, total: number) => void;
}): Promise<WrittenExport> {
  const directory = path.dirname(options.archivePath);
  await fs.mkdir(directory, { recursive: true, mode: 0o700 });
  const workDirectory = await fs.mkdtemp(path.join(directory, '.work-'));
  try {
    await fs.mkdir(path.join(workDirectory, 'tables'));
    const tables = await exportTables(
      options.sources,
      options.tenantId,
      workDirectory,
      options.signal,
      options.onTable,
    );
    const manifest: ExportManifest = {
      format: exportFormat,
      tenantId: options.tenantId,
      exportId: options.exportId,
      createdAt: new Date().toISOString(),
      tables,
    };
    const temporary = path.join(workDirectory, 'archive.tar.gz');
    await packArchive(workDirectory, manifest, temporary);
    const sha256 = await sha256OfFile(temporary);
    const { size } = await fs.stat(temporary);
    await fs.rename(temporary, options.archivePath);
    return { manifest, sizeBytes: size, sha256 };
  } finally {
    await fs.rm(workDirectory, { recursive: true, force: true });
  }
}
