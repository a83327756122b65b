import fs from 'node:fs/promises';
import { unzipSync } from 'fflate';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { isAppError } from '../../platform/errors.ts';
import { ReportRenderer } from './report-renderer.ts';
import type { StatementTable } from './statement-table.ts';

function trialBalance(accounts: number): StatementTable {
  return {
    title: 'Trial balance',
    subtitle: 'Renderer test as of 2026-12-31',
    textColumns: ['Number', 'Account'],
    amountColumns: ['Debit', 'Credit', 'Prior debit', 'Prior credit'],
    rows: Array.from({ length: accounts }, (_, index) => ({
      kind: 'line' as const,
      text: [String(1000 + index), `Account ${index}`],
      amounts: [123_456n + BigInt(index), 0n, 99n, 0n],
      exponent: 2,
    })),
  };
}

/** Nice values of this process's threads (Linux). */
async function threadNiceValues(): Promise<number[]> {
  const tasks = await fs.readdir('/proc/self/task');
  const values = await Promise.all(
    tasks.map(async (task) => {
      const stat = await fs.readFile(`/proc/self/task/${task}/stat`, 'utf8').catch(() => '');
      // Fields after the command's closing parenthesis; nice is field 19, the 17th of these.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return Number(fields[16]);
    }),
  );
  return values.filter((value) => Number.isInteger(value));
}

// The renderers as loaded on this (the main) thread refuse to run, so every file a test gets
// back was rendered on one of the renderer's threads, which load their own copy.
vi.mock('./statement-files.ts', () => {
  const refuse = () => {
    throw new Error('rendered on the event loop');
  };
  return { statementPdf: refuse, statementXlsx: refuse };
});

let renderer: ReportRenderer | null = null;

afterEach(async () => {
  await renderer?.close();
  renderer = null;
});

describe('the report renderer', () => {
  // The figures in the files are read back in statement-files.routes.test.ts, through this renderer.
  it('renders PDF, XLSX and ZIP files', async () => {
    renderer = new ReportRenderer({ threads: 1, nice: 0, queueMax: 8 });
    const table = trialBalance(3);
    const pdf = await renderer.pdf(table);
    expect(pdf.subarray(0, 5).toString('latin1')).toBe('%PDF-');
    expect(pdf.toString('latin1').trimEnd().endsWith('%%EOF')).toBe(true);
    const xlsx = await renderer.xlsx(table);
    expect(Object.keys(unzipSync(xlsx))).toContain('xl/worksheets/sheet1.xml');
    const zip = await renderer.zip({ 'a.txt': new TextEncoder().encode('alpha'), 'b.pdf': pdf }, new Date());
    const files = unzipSync(zip);
    expect(new TextDecoder().decode(files['a.txt'])).toBe('alpha');
    expect(Buffer.from(files['b.pdf'] ?? new Uint8Array()).equals(pdf)).toBe(true);
  });

  it.runIf(process.platform === 'linux')('renders on threads of their own, at the configured nice value', async () => {
    const nice = 7;
    expect(await threadNiceValues()).not.toContain(nice);
    renderer = new ReportRenderer({ threads: 1, nice, queueMax: 8 });
    await renderer.pdf(trialBalance(10));
    expect(await threadNiceValues()).toContain(nice);
    await renderer.close();
    renderer = null;
    expect(await threadNiceValues()).not.toContain(nice);
  });

  it("never renders on the event loop: the main thread's renderers are never called", async () => {
    // This file's copy of the renderers refuses (the mock above); a thread loads its own.
    const onThisThread = await import('./statement-files.ts');
    const table = trialBalance(300);
    await expect(async () => onThisThread.statementPdf(table)).rejects.toThrow('rendered on the event loop');
    renderer = new ReportRenderer({ threads: 1, nice: 0, queueMax: 8 });
    expect((await renderer.pdf(table)).subarray(0, 5).toString('latin1')).toBe('%PDF-');
    expect(Object.keys(unzipSync(await renderer.xlsx(table)))).toContain('xl/worksheets/sheet1.xml');
  });

  it('refuses with SERVICE_OVERLOADED and Retry-After once its queue is full, and renders again after', async () => {
    renderer = new ReportRenderer({ threads: 1, nice: 0, queueMax: 1 });
    const results = await Promise.allSettled(Array.from({ length: 6 }, () => renderer?.pdf(trialBalance(200))));
    const refused = results.filter((result) => result.status === 'rejected');
    const rendered = results.filter((result) => result.status === 'fulfilled');
    expect(refused.length).toBeGreaterThan(0);
    expect(rendered.length).toBeGreaterThan(0);
    for (const result of refused) {
      const error: unknown = result.reason;
      expect(isAppError(error) && error.code).toBe('SERVICE_OVERLOADED');
      expect(isAppError(error) && typeof error.extensions.retryAfterSeconds).toBe('number');
    }
    const again = await renderer.pdf(trialBalance(2));
    expect(again.subarray(0, 5).toString('latin1')).toBe('%PDF-');
  });
});
