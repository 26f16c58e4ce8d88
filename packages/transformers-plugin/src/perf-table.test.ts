/**
 * scripts/perf-table.mts: the README's performance table is generated from bench JSONs, never typed
 * by hand. `--check` with no file compares it with the committed JSONs it names (perf/); a table
 * regenerated from `pnpm bench`'s outputs takes bench plugin's rows and only the thread rows of
 * bench kernels.
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, test } from 'vitest';

const run = promisify(execFile);
const pkg = fileURLToPath(new URL('..', import.meta.url));
const script = (dir: string, ...args: string[]) => run(process.execPath, ['--import', 'tsx', path.join(dir, 'scripts', 'perf-table.mts'), ...args], { cwd: pkg });

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'tp-perf-table-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

test('--check: the README table is what the committed bench JSONs it names give', async () => {
  const { stdout } = await script(pkg, '--check');
  expect(stdout.trim()).toBe('README table matches');
});

test('pnpm bench outputs: plugin rows as they are, kernel rows only 1 vs 2 thread rows, named "<kernel> (<backend>)"', async () => {
  // A copy of the script and a README with an empty table, so the real README is not written.
  await mkdir(path.join(tmp, 'scripts'));
  await copyFile(path.join(pkg, 'scripts', 'perf-table.mts'), path.join(tmp, 'scripts', 'perf-table.mts'));
  await writeFile(path.join(tmp, 'README.md'), 'before\n<!-- perf-table:begin -->\n<!-- perf-table:end -->\nafter\n');
  const plugin = path.join(tmp, 'plugin.json');
  const kernels = path.join(tmp, 'kernels.json');
  await writeFile(plugin, JSON.stringify([{ bench: 'forward: base model', shape: 'bert-tiny', ms: 2.5 }]));
  await writeFile(
    kernels,
    JSON.stringify([
      { kernel: 'merge', shape: '64x64x4', backend: 'wasm', ms: 0.5, gflops: 1 },
      { kernel: 'threads:merge', shape: '64x64x4', backend: 'wasm 2 threads', ms: 0.25, gflops: 2, ratio: 2, note: 'speed-up' },
    ]),
  );
  await script(tmp, plugin, kernels);
  const table = (await readFile(path.join(tmp, 'README.md'), 'utf8')).split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| what'));
  expect(table).toEqual(['| forward: base model | bert-tiny | 2.5 |  |  |', '| threads:merge (wasm 2 threads) | 64x64x4 | 0.25 | 2.000× | speed-up |']);
});

test('--block <name>: only the table between its own markers is written; --check --block dtype matches the committed decode-step JSON', async () => {
  const dir = path.join(tmp, 'block');
  await mkdir(path.join(dir, 'scripts'), { recursive: true });
  await copyFile(path.join(pkg, 'scripts', 'perf-table.mts'), path.join(dir, 'scripts', 'perf-table.mts'));
  const readme = 'a\n<!-- perf-table:begin -->\nserving stays\n<!-- perf-table:end -->\nb\n<!-- perf-table:dtype:begin -->\n<!-- perf-table:dtype:end -->\n';
  await writeFile(path.join(dir, 'README.md'), readme);
  const rows = path.join(dir, 'dtype.json');
  await writeFile(rows, JSON.stringify({ meta: { date: 'd' }, rows: [{ bench: 'decode step overhead q4', shape: 'llama', ms: 40, ratio: 1.1 }] }));
  await script(dir, rows, '--block', 'dtype');
  const out = await readFile(path.join(dir, 'README.md'), 'utf8');
  expect(out.split('<!-- perf-table:dtype:begin -->')[0]).toBe(readme.split('<!-- perf-table:dtype:begin -->')[0]);
  expect(out.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| what'))).toEqual(['| decode step overhead q4 | llama | 40.0 | 1.100× |  |']);
  const { stdout } = await script(pkg, '--check', '--block', 'dtype');
  expect(stdout.trim()).toBe('README table matches');
});
