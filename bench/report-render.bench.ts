/**
 * What rendering a statement file costs, and what it costs everyone else on the instance: for
 * trial-balance tables of --rows rows (default 60, 300 and 2,000 accounts), the median time to
 * render a PDF and an XLSX (a) on the event loop, as the report routes did before
 * ledger/reports/report-renderer.ts, and (b) through the ReportRenderer's thread; and for each,
 * the longest gap between turns of a 5-ms interval timer on the event loop while it rendered,
 * which is how long every other request on the instance would have waited.
 *
 *   npx tsx bench/report-render.bench.ts [--rows 60,300,2000] [--repeat 9]
 */
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { ReportRenderer } from '../apps/server/src/ledger/reports/report-renderer.ts';
import { statementPdf, statementXlsx } from '../apps/server/src/ledger/reports/statement-files.ts';
import type { StatementTable } from '../apps/server/src/ledger/reports/statement-table.ts';
import { intFlag } from './bench-flags.ts';

const { values: flags } = parseArgs({
  options: {
    rows: { type: 'string', default: '60,300,2000' },
    repeat: { type: 'string', default: '9' },
  },
});
const sizes = (flags.rows ?? '').split(',').map((size) => Number(size));
if (sizes.some((size) => !Number.isInteger(size) || size < 1 || size > 100_000)) {
  throw new Error('--rows is a comma-separated list of whole numbers from 1 to 100000');
}
const repeat = intFlag(flags, 'repeat', 1, 1_000);

function trialBalance(rows: number): StatementTable {
  return {
    title: 'Trial balance',
    subtitle: 'Bench entity as of 2026-12-31',
    textColumns: ['Number', 'Account'],
    amountColumns: ['Unadjusted Dr', 'Unadjusted Cr', 'Adjustments Dr', 'Adjustments Cr', 'Adjusted Dr', 'Adjusted Cr'],
    rows: Array.from({ length: rows }, (_, index) => ({
      kind: 'line' as const,
      text: [String(1000 + index), `Account ${index} with a name of ordinary length`],
      amounts: Array.from({ length: 6 }, (_, column) => BigInt((index + 1) * 1_234_567 + column)),
      exponent: 2,
    })),
  };
}

/** Median wall time of `render`, and the longest event-loop gap seen while any of them ran. */
async function measure(render: () => Promise<unknown>): Promise<{ medianMs: number; longestGapMs: number }> {
  await render(); // warm: modules loaded, the thread started
  let last = performance.now();
  let longestGapMs = 0;
  const ticker = setInterval(() => {
    const now = performance.now();
    longestGapMs = Math.max(longestGapMs, now - last);
    last = now;
  }, 5);
  const times: number[] = [];
  for (let run = 0; run < repeat; run += 1) {
    const started = performance.now();
    await render();
    times.push(performance.now() - started);
    // Let the ticker run, so a gap the render caused is recorded before the next one starts.
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  clearInterval(ticker);
  times.sort((left, right) => left - right);
  return { medianMs: times[Math.floor(times.length / 2)] ?? Number.NaN, longestGapMs };
}

const format = (ms: number) => `${ms.toFixed(1)} ms`;
console.log(`report render bench: ${os.cpus().length} cores, node ${process.version}, ${repeat} renders each`);
const renderer = new ReportRenderer({ threads: 1, nice: 10, queueMax: 64 });
try {
  for (const rows of sizes) {
    const table = trialBalance(rows);
    for (const [kind, onLoop, onThread] of [
      ['PDF', () => statementPdf(table), () => renderer.pdf(table)],
      ['XLSX', () => statementXlsx(table), () => renderer.xlsx(table)],
    ] as const) {
      const loop = await measure(onLoop);
      const thread = await measure(onThread);
      console.log(
        `render ${rows} rows ${kind}: on the event loop ${format(loop.medianMs)} ` +
          `(longest event-loop gap ${format(loop.longestGapMs)}); on a thread ${format(thread.medianMs)} ` +
          `(longest event-loop gap ${format(thread.longestGapMs)})`,
      );
    }
  }
} finally {
  await renderer.close();
}
