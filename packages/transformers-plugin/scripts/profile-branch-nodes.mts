/**
 * Per-node cost of the side branch in decode (issue 12, branch overhead per token): one profiled
 * `generate()` (onnxruntime `enableProfiling`, KV cache, greedy) of a generated decoder through the
 * plugin with a LoRA on every target linear; the kernel time of each node kind at M = 1 (decode
 * steps; prefill excluded by the input shape), per token, with its count per step and the input
 * shapes of one such node, next to the base nodes'. By hand, not CI:
 *
 *   npx tsx packages/transformers-plugin/scripts/profile-branch-nodes.mts llama base q4 [both|fused|unfused] [rank]
 *
 * `unfused` loads with `fuse_siblings: false` (one branch per linear, the pre-fusion graph); `both`
 * (default) profiles unfused then fused in one process. Besides the sum of kernel times, each kind's
 * count × median kernel time: robust to kernels preempted by other processes on a loaded machine.
 */
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { createAdapter } from '@tensorpeft/core';
import { from_pretrained } from '../src/plugin.js';

const [arch = 'llama', size = 'base', dtype = 'q4', variant = 'both', rankArg = '16'] = process.argv.slice(2);
const rank = Number(rankArg);
const tokens = 16;

interface Ev {
  cat?: string;
  name?: string;
  dur?: number;
  args?: { op_name?: string; input_type_shape?: Array<Record<string, number[]>> };
}

const tf = await import('@huggingface/transformers');
const { env, AutoModelForCausalLM, AutoTokenizer } = tf;
const gen = await import('@tensorpeft/model-gen');
const root = await mkdtemp(path.join(tmpdir(), 'tp-prof-nodes-'));
try {
  env.allowRemoteModels = false;
  env.localModelPath = `${root}/`;
  const id = `${arch}-${size}`;
  const m = await gen.writeModel({ arch: arch as 'llama', size: size as 'base', seed: 1, quantized: false, dtypes: [dtype as 'q4'], ...(arch === 'gpt2' ? { gpt2Conv1d: 'MatMul' as const } : {}) }, path.join(root, id));
  const tok = await AutoTokenizer.from_pretrained(id);
  const inputs = tok('the happy model reads a long text today and');
  // Every linear targeted (PEFT's default LoRA targets are q/v only; untargeted branches still run, at ρ = 0).
  const targets = [...new Set(m.shape.modules.map((x) => x.path.split('.').at(-1)!))];
  const adapter = createAdapter({ method: 'LORA', shape: m.shape, nonzero: true, seed: 1, config: { r: rank, target_modules: targets } });
  const median = (xs: number[]): number => {
    const v = [...xs].sort((a, b) => a - b);
    return v.length % 2 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2;
  };
  // `both`: unfused then fused, back to back in one process (the same load period).
  for (const v of variant === 'both' ? ['unfused', 'fused'] : [variant]) {
    const dir = path.join(root, `profile-${v}`);
    await mkdir(dir, { recursive: true });
    const load0 = loadavg()[0]!;
    const model = (await from_pretrained(env, AutoModelForCausalLM, id, {
      dtype,
      adapters: { a: adapter },
      fuse_siblings: v !== 'unfused',
      session_options: { enableProfiling: true, profileFilePrefix: path.join(dir, 'ort') },
    } as never)) as unknown as { generate(o: unknown): Promise<unknown>; dispose(): Promise<unknown>; sessions: Record<string, { endProfiling?: () => unknown }> };
    const g = { ...(inputs as object), max_new_tokens: tokens, min_new_tokens: tokens, do_sample: false };
    await model.generate(g);
    for (const s of Object.values(model.sessions)) await s.endProfiling?.();
    await model.dispose();
    const events: Ev[] = [];
    for (const f of await readdir(dir)) if (f.endsWith('.json')) events.push(...(JSON.parse(await readFile(path.join(dir, f), 'utf8')) as Ev[]));
    // Decode steps: the first input is [1, 1, n] (x of one token); the profile holds the prefill and tokens − 1 decode steps.
    const steps = tokens - 1;
    const kinds = new Map<string, { us: number[]; shapes: string }>();
    for (const e of events) {
      if (e.cat !== 'Node' || !e.name?.endsWith('_kernel_time') || typeof e.dur !== 'number') continue;
      const shapes = (e.args?.input_type_shape ?? []).map((o) => Object.values(o)[0] ?? []);
      const x = shapes[0] ?? [];
      if (x.length < 3 || x[x.length - 2] !== 1) continue;
      const node = e.name.slice(0, -'_kernel_time'.length);
      const op = e.args?.op_name ?? '?';
      const kind = node.includes('/tensorpeft/') ? `branch ${node.split('/').pop()!.replace(/_\d+$/, '')} (${op})` : `base ${op}`;
      const k = kinds.get(kind) ?? { us: [], shapes: shapes.map((d) => `[${d.join(',')}]`).join(' ') };
      k.us.push(e.dur);
      kinds.set(kind, k);
    }
    const load1 = loadavg()[0]!;
    const rows = [...kinds].sort((a, b) => b[1].us.length * median(b[1].us) - a[1].us.length * median(a[1].us));
    // Sum of kernel times, and the robust estimate count × median per kind (a kernel preempted by
    // another process's work lands in the sum, rarely in the median).
    const tot = { branch: 0, base: 0, branchMed: 0, baseMed: 0, branchNodes: 0 };
    for (const [k, x] of rows) {
      const sum = x.us.reduce((a, b) => a + b, 0);
      const med = x.us.length * median(x.us);
      if (k.startsWith('branch')) {
        tot.branch += sum;
        tot.branchMed += med;
        tot.branchNodes += x.us.length;
      } else {
        tot.base += sum;
        tot.baseMed += med;
      }
    }
    console.log(`\n${id} ${dtype} ${v} LoRA r=${rank}: ${steps} decode steps, load ${load0.toFixed(2)} → ${load1.toFixed(2)}`);
    console.log(`branch nodes per step ${(tot.branchNodes / steps).toFixed(0)}; decode kernel µs/token: base nodes ${(tot.base / steps).toFixed(0)}, branch ${(tot.branch / steps).toFixed(0)} (${((100 * tot.branch) / tot.base).toFixed(1)} % of base); count × median: base ${(tot.baseMed / steps).toFixed(0)}, branch ${(tot.branchMed / steps).toFixed(0)} (${((100 * tot.branchMed) / tot.baseMed).toFixed(1)} %)`);
    console.log('kind | nodes/step | median µs/node | µs/token (count × median) | inputs of one node');
    for (const [k, x] of rows.slice(0, 14)) console.log(`${k} | ${(x.us.length / steps).toFixed(0)} | ${median(x.us).toFixed(2)} | ${((x.us.length * median(x.us)) / steps).toFixed(1)} | ${x.shapes}`);
  }
} finally {
  await rm(root, { recursive: true, force: true });
}
