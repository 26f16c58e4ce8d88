/**
 * Issue 16's serving rows only, without the rest of `pnpm bench` (the machine is shared): load
 * ratios first / cached vs plain on base-size DistilBERT, the rewrite alone vs model bytes,
 * per-run overhead on tiny LLaMA generation (with and without base_session), the ORT profile of
 * one LoRA, and kernels-wasm's 1 vs 2 thread rows — all in one process, with the load average.
 *
 *   npx tsx packages/transformers-plugin/scripts/bench-serving.mts [--quick] [--out file.json]
 *
 * Writes the rows as JSON (default bench-results/serving.json); scripts/perf-table.mts turns that
 * file into the README's performance table.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { AutoModelForSequenceClassification, env } from '@huggingface/transformers';
import { writeModel } from '@tensorpeft/model-gen';
import { loadRatioRows, rewriteScalingRows } from '../src/bench-load.js';
import { runOverheadBench } from '../src/bench-overhead.js';
import { runProfileRows } from '../src/bench-profile.js';
import { runThreadBench } from '../../kernels-wasm/src/bench-threads.js';
import { BENCH_CONFIGS, MERGE_SHAPES } from '../../kernels-wasm/src/bench.js';

const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, out: { type: 'string' }, skip: { type: 'string' } } });
const quick = values.quick;
const skip = new Set((values.skip ?? '').split(',').filter(Boolean));
const out = values.out ?? 'bench-results/serving.json';
const log = (l: string) => process.stderr.write(`  ${l}\n`);
const meta = { date: new Date().toISOString(), cpu: cpus()[0]?.model, cores: cpus().length, node: process.version, quick, loadStart: loadavg() };
const rows: Array<Record<string, unknown>> = [];
const root = await mkdtemp(path.join(tmpdir(), 'tp-serving-'));
try {
  env.allowRemoteModels = false;
  env.localModelPath = `${root}/`;
  if (!skip.has('load')) {
    log('load: base DistilBERT (268 MB fp32)');
    const db = await writeModel({ arch: 'distilbert', size: quick ? 'tiny' : 'base', numLabels: 2, quantized: false, seed: 1 }, path.join(root, 'db'));
    // Labelled as `bench plugin` labels its load rows (bench.ts), so perf-table.mts lets either run's rows replace the other's.
    const dims = `distilbert-${quick ? 'tiny' : 'base'} (hidden ${db.shape.hiddenSize}, ${db.shape.numLayers} layers)`;
    rows.push(...(await loadRatioRows(env as never, AutoModelForSequenceClassification, 'db', dims, quick ? 2 : 5)));
  }
  if (!skip.has('rewrite')) {
    log('rewrite alone vs model bytes');
    const tiny = await writeModel({ arch: 'bert', size: 'tiny', numLabels: 2, quantized: false, seed: 1 }, path.join(root, 'rs'));
    const bytes = new Uint8Array(await readFile(path.join(root, 'rs', 'onnx', 'model.onnx')));
    const MB = 2 ** 20;
    rows.push(...(await rewriteScalingRows(bytes, tiny.shape.modules.map((x) => x.path), quick ? [MB, 4 * MB, 16 * MB, 64 * MB] : [MB, 16 * MB, 64 * MB, 256 * MB, 1300 * MB], quick ? 2 : 3)));
  }
  if (!skip.has('overhead')) {
    log('per-run overhead: tiny LLaMA');
    rows.push(...(await runOverheadBench({ quick, log })));
  }
  if (!skip.has('profile')) rows.push(...(await runProfileRows({ log })));
  if (!skip.has('threads')) {
    log('threads: 1 vs 2');
    for (const r of await runThreadBench({ quick, log, configs: BENCH_CONFIGS, models: ['bert-base'], mergeShapes: MERGE_SHAPES.slice(0, 2) })) {
      rows.push({ bench: `${r.kernel} (${r.backend})`, shape: r.shape, ms: r.ms, ...(r.ratio === undefined ? {} : { ratio: r.ratio }), ...(r.note ? { note: r.note } : {}) });
    }
  }
} finally {
  await rm(root, { recursive: true, force: true });
}
await mkdir(path.dirname(out), { recursive: true });
await writeFile(out, `${JSON.stringify({ meta: { ...meta, loadEnd: loadavg() }, rows }, null, 2)}\n`);
log(`wrote ${rows.length} rows to ${out}`);
process.exit(0);
