import { zipSync } from 'fflate';
import { statementPdf, statementXlsx } from './statement-files.ts';
import type { StatementTable } from './statement-table.ts';

/** One piece of rendering work, as posted to a rendering thread (structured-cloned). */
export type RenderTask =
  | { kind: 'pdf'; table: StatementTable }
  | { kind: 'xlsx'; table: StatementTable }
  | { kind: 'zip'; files: Record<string, Uint8Array>; mtime: Date };

/** Runs in a rendering thread: the task's file as bytes. */
export async function renderReportFile(task: RenderTask): Promise<Uint8Array> {
  if (task.kind === 'pdf') return await statementPdf(task.table);
  if (task.kind === 'xlsx') return await statementXlsx(task.table);
  // Statements compress well; PDFs and XLSX are compressed already, so their level matters little.
  return zipSync(task.files, { level: 6, mtime: task.mtime });
}
