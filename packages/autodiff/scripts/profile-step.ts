/**
 * Where a training step's time goes: one base DistilBERT (seq 128, batch 8) training-session run vs
 * one forward-session run, per ONNX op type from onnxruntime's profiler, plus the JS parts of a step
 * (method model, chain rule, AdamW). Not part of CI (minutes).
 *
 *   npx tsx packages/autodiff/scripts/profile-step.ts --model <dir> [--method trac] [--seq 128] [--batch 8] [--level basic]
 */
import { readFile, readdir, rm, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { createTrainer, type OrtLike } from '../src/index.js';

const { values } = parseArgs({ options: { model: { type: 'string' }, method: { type: 'string' }, seq: { type: 'string' }, batch: { type: 'string' }, level: { type: 'string' }, reps: { type: 'string' } } });
const dir = values.model!;
const seq = Number(values.seq ?? 128);
const batchN = Number(values.batch ?? 8);
const reps = Number(values.reps ?? 4);
const config = JSON.parse(await readFile(path.join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
const bytes = await readFile(path.join(dir, 'onnx/model.onnx'));
const prof = await mkdtemp(path.join(tmpdir(), 'tp-prof-'));
const sessionOptions = { graphOptimizationLevel: values.level ?? 'basic', enableProfiling: true, profileFilePrefix: path.join(prof, 'p') };
let t0 = performance.now();
const t = await createTrainer({ onnx: bytes, config }, { method: values.method ?? 'trac', ort: ort as unknown as OrtLike, seed: 1, sessionOptions });
console.error(`createTrainer ${(performance.now() - t0).toFixed(0)} ms`);
const vocab = config['vocab_size'] as number;
const batch = Array.from({ length: batchN }, (_, i) => ({ input_ids: Array.from({ length: seq }, (_, j) => 3 + ((i * 131 + j * 7) % (vocab - 3))), label: i % 2 }));
for (let r = 0; r < reps; r++) {
  t0 = performance.now();
  await t.evaluate(batch, { batch_size: batchN });
  const fwd = performance.now() - t0;
  t0 = performance.now();
  await t.train(batch, { epochs: 1, batch_size: batchN, learning_rate: 1e-4 });
  const step = performance.now() - t0;
  console.error(`rep ${r}: forward ${fwd.toFixed(0)} ms, step ${step.toFixed(0)} ms, ratio ${(step / fwd).toFixed(2)}`);
}
await t.release();
for (const f of await readdir(prof)) {
  const all = JSON.parse(await readFile(path.join(prof, f), 'utf8')) as Array<{ cat: string; name: string; ts: number; dur: number; args?: { op_name?: string; output_size?: string } }>;
  // The last run only (earlier ones grow the memory arena: first-touch page faults inflate kernels).
  const runs = all.filter((e) => e.cat === 'Session' && e.name === 'model_run');
  const last = runs[runs.length - 1]!;
  console.log(`model_run ms: ${runs.map((r) => (r.dur / 1000).toFixed(0)).join(', ')}`);
  const ev = all.filter((e) => e.ts >= last.ts && e.ts <= last.ts + last.dur);
  const byOp = new Map<string, { us: number; n: number }>();
  let total = 0;
  for (const e of ev) {
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
    const op = e.args?.op_name ?? '?';
    const bwd = e.name.includes('/tensorpeft/grad') ? ' (bwd)' : '';
    const k = op + bwd;
    const v = byOp.get(k) ?? { us: 0, n: 0 };
    v.us += e.dur;
    v.n++;
    byOp.set(k, v);
    total += e.dur;
  }
  console.log(`\n${f}: kernel time ${(total / 1000).toFixed(0)} ms in the last run`);
  for (const [k, v] of [...byOp].sort((a, b) => b[1].us - a[1].us).slice(0, 25)) console.log(`  ${k.padEnd(28)} ${(v.us / 1000).toFixed(1).padStart(9)} ms  ${((100 * v.us) / total).toFixed(1).padStart(5)} %  n=${v.n}`);
}
await rm(prof, { recursive: true, force: true });
