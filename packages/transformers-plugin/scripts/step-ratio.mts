/**
 * The decode step itself, base vs rewritten (issue 12's goal, branch overhead per generated token),
 * without transformers.js or the profiler: onnxruntime-node runs one decode step (1 new token, a KV
 * cache of `past` tokens) of a generated base-size decoder file, as is and rewritten with a LoRA
 * r = 16 fed on every target linear (per module, or with sibling fusion), alternating the sessions
 * run by run; the ratio of median step times over many runs (robust to other processes' bursts).
 * By hand, not CI:
 *
 *   npx tsx packages/transformers-plugin/scripts/step-ratio.mts [llama|gpt2] [q4|fp16] [runs=300] [past=32] [fusion|targets]
 *
 * `targets`: an adapter on the architecture's PEFT default targets (q/v on LLaMA, c_attn on GPT-2)
 * under the default load (every linear branched, the others fed rank 0) vs `target_modules` naming
 * just those (the others get no branch: target-modules.ts).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { writeModel } from '@tensorpeft/model-gen';
import { rewriteModel } from '../src/rewrite.js';
import { toHalfBits } from '../src/dtype.js';
import { isTargeted } from '../src/target-modules.js';

const [arch = 'llama', dtype = 'q4', runsArg = '300', pastArg = '32', mode = 'fusion'] = process.argv.slice(2);
const runs = Number(runsArg);
const past = Number(pastArg);
const rank = 16;
const root = await mkdtemp(path.join(tmpdir(), 'tp-step-ratio-'));
try {
  const m = await writeModel({ arch: arch as 'llama', size: 'base', seed: 1, quantized: false, dtypes: [dtype as 'q4'], ...(arch === 'gpt2' ? { gpt2Conv1d: 'MatMul' as const } : {}) }, path.join(root, 'm'));
  const bytes = new Uint8Array(await readFile(path.join(root, 'm', 'onnx', `model_${dtype}.onnx`)));
  const targets = m.shape.modules.map((x) => x.path);
  // `branches again`: a second session of the same per-module rewrite — the A/A control (how far two
  // identical sessions differ in this run: memory placement, creation order).
  const perModule = rewriteModel(bytes, { targets, branchDtype: 'float32' }).bytes;
  const used = targets.filter((p) => isTargeted(p, m.shape.defaultTargets));
  const variants =
    mode === 'targets'
      ? { base: bytes, 'every linear': perModule, 'target_modules': rewriteModel(bytes, { targets: used, untargeted: targets.filter((p) => !used.includes(p)), branchDtype: 'float32' }).bytes }
      : { base: bytes, fused: rewriteModel(bytes, { targets, branchDtype: 'float32', fuseSiblings: true }).bytes, branches: perModule, 'branches again': perModule };
  const sessions = Object.fromEntries(await Promise.all(Object.entries(variants).map(async ([k, b]) => [k, await ort.InferenceSession.create(b)] as const)));
  const noise = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => 0.02 * Math.sin(seed * 7.31 + i * 1.37));
  const feedsFor = (s: ort.InferenceSession): Record<string, ort.Tensor> => {
    const f: Record<string, ort.Tensor> = {};
    const meta = new Map(s.inputMetadata.map((x) => [x.name, x]));
    s.inputNames.forEach((name, i) => {
      const md = meta.get(name) as { shape?: Array<number | string>; type?: string } | undefined;
      const shape = md?.shape ?? [];
      const half = md?.type === 'float16';
      const float = (dims: number[]) => {
        const d = noise(dims.reduce((a, b) => a * b, 1), i);
        return half ? new ort.Tensor('float16', toHalfBits(d), dims) : new ort.Tensor('float32', d, dims);
      };
      if (name === 'input_ids') f[name] = new ort.Tensor('int64', BigInt64Array.of(5n), [1, 1]);
      else if (name === 'attention_mask') f[name] = new ort.Tensor('int64', new BigInt64Array(past + 1).fill(1n), [1, past + 1]);
      else if (name === 'position_ids') f[name] = new ort.Tensor('int64', BigInt64Array.of(BigInt(past)), [1, 1]);
      else if (name.startsWith('past_key_values')) f[name] = float(shape.map((d, j) => (typeof d === 'number' ? d : j === 0 ? 1 : past)));
      else if (name.startsWith('tensorpeft.')) {
        // Rank 16 per module (A [n, ρ], B [ρ, m]); fused groups: ρ per member, m the group's sum.
        const members = name.startsWith('tensorpeft.siblings:') ? name.slice(20, -2).split(',').length : 1;
        // `targets` mode: only the adapter's modules have rank 16, the others rank 0 (not in the adapter).
        const r = mode === 'targets' && !isTargeted(name.slice(11, -2), m.shape.defaultTargets) ? 0 : rank * members;
        f[name] = float(name.endsWith('.A') ? [Number(shape[0]), r] : [r, Number(shape[1])]);
      } else throw new Error(`no feed for ${name}`);
    });
    return f;
  };
  const feeds = Object.fromEntries(Object.entries(sessions).map(([k, s]) => [k, feedsFor(s)]));
  const t: Record<string, number[]> = Object.fromEntries(Object.keys(sessions).map((k) => [k, []]));
  const names = Object.keys(sessions);
  for (const k of names) await sessions[k]!.run(feeds[k]!); // warm-up
  const load0 = loadavg()[0]!;
  for (let r = 0; r < runs; r++)
    for (let j = 0; j < names.length; j++) {
      const k = names[(j + r) % names.length]!;
      const t0 = process.hrtime.bigint();
      await sessions[k]!.run(feeds[k]!);
      t[k]!.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
  const b = med(t['base']!);
  console.log(`${arch}-base ${dtype}, decode step at ${past} past tokens, LoRA r=${rank} on ${mode === 'targets' ? `${used.length} (${m.shape.defaultTargets.join(', ')}) of ${targets.length}` : targets.length} linears, ${runs} runs each (alternating), load ${load0.toFixed(2)} → ${loadavg()[0]!.toFixed(2)}`);
  for (const k of names) console.log(`${k}: median ${med(t[k]!).toFixed(3)} ms/step (${(med(t[k]!) / b).toFixed(3)}× base)`);
  for (const s of Object.values(sessions)) await s.release();
} finally {
  await rm(root, { recursive: true, force: true });
}
