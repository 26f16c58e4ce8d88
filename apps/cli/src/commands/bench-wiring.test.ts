/**
 * `pnpm bench` end to end at small shapes: every `bench …` command of the root package.json's
 * `bench` script, through the CLI's own entry (`benchCommand`) with the script's arguments, its
 * `--out` moved to a temporary folder and each bench's small-shape flags added. It checks the
 * wiring — every row group runs, `--out` holds what `--json` prints, every row has its fields, and
 * every ratio is a finite positive number — never timing values (those belong to the benchmark).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { benchCommand } from './bench.js';

const root = fileURLToPath(new URL('../../../../', import.meta.url));

/** Small shapes per bench: `pnpm bench`'s real rows are the same code at full size. */
const SMALL: Record<string, string[]> = {
  // js and wasm only: the default also tries WebGPU, which a CI machine may lack or emulate.
  kernels: ['--tiny', '--quick', '--backends', 'js,wasm'],
  plugin: ['--size', 'tiny', '--quick', '--arch', 'distilbert', '--seq', '16'],
  train: ['--size', 'tiny', '--seq', '16', '--batch', '2', '--repeats', '2', '--warmup', '1'],
};

/** The `bench …` argument lists of the root `bench` script, in order. */
async function scriptBenches(): Promise<string[][]> {
  const pkg = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  return pkg.scripts['bench']!.split('&&')
    .map((s) => s.trim())
    .filter((s) => s.startsWith('node apps/cli/dist/bin.js bench '))
    .map((s) => s.slice('node apps/cli/dist/bin.js bench '.length).split(/\s+/));
}

type Row = Record<string, unknown>;

function expectRowFields(row: Row, strings: string[], checkRatio = true): void {
  for (const k of strings) expect(typeof row[k] === 'string' && (row[k] as string).length > 0, `${k} of ${JSON.stringify(row)}`).toBe(true);
  expect(Number.isFinite(row['ms']) && (row['ms'] as number) >= 0, `ms of ${JSON.stringify(row)}`).toBe(true);
  if (checkRatio && 'ratio' in row) expect(Number.isFinite(row['ratio']) && (row['ratio'] as number) > 0, `ratio of ${JSON.stringify(row)}`).toBe(true);
  if ('bytes' in row) expect(Number.isInteger(row['bytes']) && (row['bytes'] as number) >= 0, `bytes of ${JSON.stringify(row)}`).toBe(true);
}

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'tensorpeft-bench-wiring-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** Runs one bench of the script at small shapes; returns the rows printed and those written by --out. */
async function runSmall(args: string[]): Promise<{ printed: Row[]; written: Row[] }> {
  const name = args[0]!;
  const out = path.join(tmp, `${name}.json`);
  const i = args.indexOf('--out');
  expect(i, `pnpm bench's ${name} writes --out`).toBeGreaterThan(0);
  const argv = [...args.slice(0, i + 1), out, ...args.slice(i + 2), ...SMALL[name]!];
  let stdout = '';
  const code = await benchCommand(argv, { out: (t) => (stdout += `${t}\n`), err: () => {} });
  expect(code).toBe(0);
  return { printed: JSON.parse(stdout) as Row[], written: JSON.parse(await readFile(out, 'utf8')) as Row[] };
}

describe('pnpm bench wiring (small shapes)', () => {
  it('the bench script runs kernels, plugin and train, each with --json and --out (every one has small-shape flags here)', async () => {
    const benches = await scriptBenches();
    expect(benches.map((b) => b[0])).toEqual(Object.keys(SMALL));
    for (const b of benches) expect(b).toContain('--json');
  });

  it('bench kernels: every row group on js and wasm, fields present, thread ratios finite and positive', async () => {
    const args = (await scriptBenches()).find((b) => b[0] === 'kernels')!;
    const { printed, written } = await runSmall(args);
    expect(written).toEqual(printed);
    for (const r of printed) {
      expectRowFields(r, ['kernel', 'shape', 'backend']);
      expect(Number.isFinite(r['gflops']) && (r['gflops'] as number) >= 0).toBe(true);
    }
    const kernels = new Set(printed.map((r) => (r['kernel'] as string).split(':')[0]));
    expect([...kernels].sort()).toEqual(['apply', 'materialize', 'merge', 'threads', 'tucker']);
    for (const k of ['merge', 'apply', 'tucker']) expect(new Set(printed.filter((r) => r['kernel'] === k).map((r) => r['backend']))).toEqual(new Set(k === 'merge' ? ['js', 'wasm', 'wasm-resident'] : ['js', 'wasm']));
    // Every 2-thread row carries its speed-up over 1 thread.
    const two = printed.filter((r) => r['backend'] === 'wasm 2 threads');
    expect(two.length).toBeGreaterThan(0);
    for (const r of two) expect(r).toHaveProperty('ratio');
  }, 240_000);

  it('bench plugin: swap, forward, load_adapter and serving rows, fields present, ratios finite and positive', async () => {
    const args = (await scriptBenches()).find((b) => b[0] === 'plugin')!;
    const { printed, written } = await runSmall(args);
    expect(written).toEqual(printed);
    for (const r of printed) expectRowFields(r, ['bench', 'shape']);
    const has = (prefix: string) => printed.some((r) => (r['bench'] as string).startsWith(prefix) && 'ratio' in r);
    for (const p of ['swap: set_adapter', 'forward: plugin, branch mode', 'forward: plugin, merge mode', 'load: plugin, cached rewrite', 'rewrite alone: full decode', 'generate: plugin, one LoRA', 'decode step overhead q4', 'decode step profile fp16', 'ORT profile: model_run per token, plugin + one LoRA']) expect(has(p), p).toBe(true);
    expect(printed.filter((r) => (r['bench'] as string).endsWith('(folder → ready)')).length).toBeGreaterThan(0);
  }, 400_000);

  it('bench train: forward, step, ratio and memory rows, fields present, ratios finite and positive', async () => {
    const args = (await scriptBenches()).find((b) => b[0] === 'train')!;
    const { printed, written } = await runSmall(args);
    expect(written).toEqual(printed);
    // The memory ratio is step ÷ forward working memory; at these shapes the forward may add no
    // page to the peak RSS (bench-train.test.ts), and the bench then reports ∞ (null in JSON).
    const memRatio = printed.find((r) => r['bench'] === 'train step ÷ forward working memory')!;
    for (const r of printed) expectRowFields(r, ['bench', 'shape'], r !== memRatio);
    const bytesOf = (bench: string) => printed.find((r) => r['bench'] === bench)!['bytes'] as number;
    const [fw, sw] = [bytesOf('train forward working memory'), bytesOf('train step working memory')];
    if (fw > 0 && sw > 0) expect(Number.isFinite(memRatio['ratio']) && (memRatio['ratio'] as number) > 0).toBe(true);
    else expect(memRatio['ratio'] === null || memRatio['ratio'] === 0).toBe(true);
    // The row names themselves are bench-train.test.ts's; here: the time ratio row is there with its ratio.
    expect(printed.find((r) => r['bench'] === 'train step ÷ forward')).toHaveProperty('ratio');
  }, 240_000);
});
