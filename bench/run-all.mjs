// `npm run bench`: runs every bench/*.bench.ts in turn through tsx, with default settings,
// then repeats each benchmark's final line(s) (its headline figures). Stops at the first failure.
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(benchDir, '..');
const tsxCli = path.join(repoRoot, 'node_modules', 'tsx', 'dist', 'cli.mjs');

/** The final line, with the lines just before it that start with the same word (startup fresh/existing). */
function headlineOf(output) {
  const lines = output.trim().split('\n');
  const last = lines.at(-1) ?? '';
  const word = last.split(' ')[0];
  let first = lines.length - 1;
  while (first > 0 && lines[first - 1].split(' ')[0] === word) first--;
  return lines.slice(first);
}

const files = (await fs.readdir(benchDir)).filter((file) => file.endsWith('.bench.ts')).sort();
const headlines = [];
for (const file of files) {
  console.log(`\n=== ${file} ===`);
  const child = spawn(process.execPath, [tsxCli, path.join('bench', file)], {
    cwd: repoRoot,
    stdio: ['inherit', 'pipe', 'inherit'],
  });
  let output = '';
  child.stdout.on('data', (chunk) => {
    process.stdout.write(chunk);
    output += chunk.toString();
  });
  // Ctrl-C reaches the child too (same process group); it cleans up and exits on its own.
  const code = await new Promise((resolve) => child.once('exit', (exitCode, signal) => resolve(exitCode ?? signal)));
  if (code !== 0) {
    console.error(`\n${file} failed (${code})`);
    process.exit(1);
  }
  headlines.push(...headlineOf(output).map((line) => `${file}: ${line}`));
}
console.log(`\n=== summary ===\n${headlines.join('\n')}`);
