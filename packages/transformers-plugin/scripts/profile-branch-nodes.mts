/**
 * Per-node cost of the side branch in decode (issue 12, branch overhead per token): one profiled
 * `generate()` (onnxruntime `enableProfiling`, KV cache, greedy) of a generated decoder through the
 * plugin with a LoRA on every target linear; the kernel time of each node kind at M = 1 (decode
 * steps; prefill excluded by the input shape), per token, with its count per step and the input
 * shapes of one such node, next to the base nodes'. By hand, not CI:
 *
 *   npx tsx packages/transformers-plugin/scripts/profile-branch-nodes.mts llama base q4 [unfused] [rank]
 *
 * `unfused` loads with `fuse_siblings: false` (one branch per linear, the pre-fusion graph).
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { createAdapter } from '@tensorpeft/core';
import { from_pretrained } from '../src/plugin.js';

const [arch = 'llama', size = 'base', dtype = 'q4', variant = 'fused', rankArg = '16'] = process.argv.slice(2);
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
  const adapter = createAdapter({ method: 'LORA', shape: m.shape, nonzero: true, seed: 1, config: { r: rank } });
  const prefix = path.join(root, 'ort');
  const load0 = loadavg()[0]!;
  const model = (await from_pretrained(env, AutoModelForCausalLM, id, {
    dtype,
    adapters: { a: adapter },
    ...(variant === 'unfused' ? { fuse_siblings: false } : {}),
    session_options: { enableProfiling: true, profileFilePrefix: prefix },
  } as never)) as unknown as { generate(o: unknown): Promise<unknown>; dispose(): Promise<unknown>; sessions: Record<string, { endProfiling?: () => unknown }> };
  const g = { ...(inputs as object), max_new_tokens: tokens, min_new_tokens: tokens, do_sample: false };
  await model.generate(g);
  for (const s of Object.values(model.sessions)) await s.endProfiling?.();
  await model.dispose();
  const events: Ev[] = [];
  for (const f of await readdir(root)) if (f.endsWith('.json')) events.push(...(JSON.parse(await readFile(path.join(root, f), 'utf8')) as Ev[]));
  // Decode steps: the first input's second-to-last dim is 1 (x [1, 1, n]); the profile holds the prefill and tokens − 1 decode steps.
  const steps = tokens - 1;
  const kinds = new Map<string, { us: number; count: number; shapes: string }>();
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name?.endsWith('_kernel_time') || typeof e.dur !== 'number') continue;
    const shapes = (e.args?.input_type_shape ?? []).map((o) => Object.values(o)[0] ?? []);
    const x = shapes[0] ?? [];
    if (x.length < 2 || x[x.length - 2] !== 1) continue;
    const node = e.name.slice(0, -'_kernel_time'.length);
    const op = e.args?.op_name ?? '?';
    const ours = node.includes('/tensorpeft/');
    const kind = ours ? `branch ${node.split('/').pop()!.replace(/_\d+$/, '')} (${op})` : `base ${op}`;
    const k = kinds.get(kind) ?? { us: 0, count: 0, shapes: shapes.map((d) => `[${d.join(',')}]`).join(' ') };
    k.us += e.dur;
    k.count++;
    kinds.set(kind, k);
  }
  const load1 = loadavg()[0]!;
  const rows = [...kinds].sort((a, b) => b[1].us - a[1].us);
  let branch = 0;
  let base = 0;
  for (const [k, v] of rows) (k.startsWith('branch') ? (branch += v.us) : (base += v.us));
  console.log(`${id} ${dtype} ${variant} LoRA r=${rank}: decode steps ${steps}, load ${load0.toFixed(2)} → ${load1.toFixed(2)}`);
  console.log(`decode kernel µs/token: base nodes ${(base / steps).toFixed(0)}, branch nodes ${(branch / steps).toFixed(0)} (${((100 * branch) / base).toFixed(1)} % of base)`);
  console.log('kind | nodes/step | µs/token | µs/node | inputs of one node');
  for (const [k, v] of rows.slice(0, 16)) {
    const per = v.count / steps;
    console.log(`${k} | ${per.toFixed(0)} | ${(v.us / steps).toFixed(1)} | ${(v.us / v.count).toFixed(2)} | ${v.shapes}`);
  }
} finally {
  if (process.env.KEEP_PROFILE) console.log("kept", root); else await rm(root, { recursive: true, force: true });
}
