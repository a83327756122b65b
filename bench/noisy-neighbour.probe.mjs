// Loaded into the noisy-neighbour benchmark's server process with `node --import` (never by
// the server itself): every 100 ms it appends one JSON line to BENCH_PROBE_FILE with the
// event loop's delay (perf_hooks monitorEventLoopDelay), garbage-collection pauses and the
// process's CPU time over that interval, so the bench can tell a blocked event loop from a
// starved process or a slow database.
import fs from 'node:fs';
import { constants, monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { isMainThread } from 'node:worker_threads';

const file = process.env.BENCH_PROBE_FILE;
const intervalMs = 100;
const gcKinds = {
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weak callbacks',
};

// `--import` loads this into the server's worker threads too (report rendering); only the main
// thread's event loop serves requests. CPU time is the whole process's, threads included.
if (file && isMainThread) {
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  let gcMs = 0;
  let gcMaxMs = 0;
  let gcMaxKind = '';
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      gcMs += entry.duration;
      if (entry.duration <= gcMaxMs) continue;
      gcMaxMs = entry.duration;
      gcMaxKind = gcKinds[entry.detail?.kind] ?? 'other';
    }
  }).observe({ entryTypes: ['gc'] });
  let cpu = process.cpuUsage();
  const timer = setInterval(() => {
    const now = process.cpuUsage();
    const sample = {
      atMs: Date.now(),
      loopMaxMs: delay.max / 1e6,
      loopP99Ms: delay.percentile(99) / 1e6,
      gcMs,
      gcMaxMs,
      gcMaxKind,
      cpuMs: (now.user - cpu.user + now.system - cpu.system) / 1_000,
    };
    cpu = now;
    delay.reset();
    gcMs = 0;
    gcMaxMs = 0;
    gcMaxKind = '';
    fs.appendFileSync(file, `${JSON.stringify(sample)}\n`);
  }, intervalMs);
  timer.unref();
}
