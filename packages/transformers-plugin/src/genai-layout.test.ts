/**
 * onnxruntime-genai builder exports (model-gen `layout: 'genai'`): q, k and v are column slices of
 * one packed `qkv_proj` product feeding GroupQueryAttention, attention modules are named
 * `layers.N.attn.*`. Each slice gets its own branch (rewrite-packed.ts); mergeModel merges into the
 * slice's columns. References are independent of the packed code: the same adapter merged into the
 * standard (optimum) layout of the same weights. Dtypes: fp32, fp16 (`-p fp16 -e webgpu`: fp16
 * GroupQueryAttention), q4, q4f16 — the contracts only (disabled exact, verify's tolerance, tokens),
 * not the dtype the branch computes in, which the plugin picks per device.
 */
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import * as ort from 'onnxruntime-node';
import { AutoModelForCausalLM, AutoTokenizer, env, Tensor } from '@huggingface/transformers';
import { createAdapter, listMethods, materializeAdapter } from '@tensorpeft/core';
import { buildGenaiLlama, decodeModel, encodeGenai, modelDims, writeModel, type GeneratedModel, type Graph } from '@tensorpeft/model-gen';
import { fromHalfBits } from './dtype.js';
import { mergeModel } from './merge.js';
import { from_pretrained } from './plugin.js';
import { rewriteModel } from './rewrite.js';
import { verify } from './verify.js';

let root: string;
let genai: GeneratedModel;
let standard: GeneratedModel;
beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'tp-genai-'));
  genai = await writeModel({ arch: 'llama', size: 'tiny', seed: 5, layout: 'genai', dtypes: ['fp16', 'q4', 'q4f16'] }, path.join(root, 'genai'));
  standard = await writeModel({ arch: 'llama', size: 'tiny', seed: 5, quantized: false }, path.join(root, 'standard'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

// Factorizations for the tiny LLaMA's widths (64 hidden, 32 KV, 128 FFN), as in merged-decoder.test.ts.
const CONFIG: Record<string, Record<string, unknown>> = {
  TRAC: { tensor_shape: { '64': [4, 4, 4], '32': [2, 4, 4], '128': [4, 4, 8] } },
  LORETTA: { tensor_shape_a: { '64': [8, 8, 8], '128': [8, 8, 16] }, tensor_shape_b: { '64': [8, 8, 8], '32': [4, 8, 8], '128': [8, 8, 16] } },
  TENSLORA: { target_modules: ['q_proj', 'o_proj'] },
};

/**
 * The genai graph with each layer's gate_proj and up_proj MatMuls fused into one
 * `/model/layers.N/mlp/gate_up_proj/MatMul` on [in, gate | up] columns, read back through a Split
 * into the two original output names (the layout of a checkpoint whose MLP is packed, e.g. Phi-3).
 */
function packGateUp(g: Graph, H: number, I: number): Graph {
  const nodes = [];
  const inits = new Map(g.initializers);
  for (const n of g.nodes) {
    const m = /^\/model\/layers\.(\d+)\/mlp\/(gate|up)_proj\/MatMul$/.exec(n.name);
    if (!m) {
      nodes.push(n);
      continue;
    }
    if (m[2] === 'up') continue;
    const pre = `/model/layers.${m[1]}/mlp`;
    const wg = g.initializers.get(`model.layers.${m[1]}.mlp.gate_proj.MatMul.weight`)!.data as Float32Array;
    const wu = g.initializers.get(`model.layers.${m[1]}.mlp.up_proj.MatMul.weight`)!.data as Float32Array;
    const w = new Float32Array(H * 2 * I);
    for (let i = 0; i < H; i++) {
      w.set(wg.subarray(i * I, (i + 1) * I), i * 2 * I);
      w.set(wu.subarray(i * I, (i + 1) * I), i * 2 * I + I);
    }
    const wName = `model.layers.${m[1]}.mlp.gate_up_proj.MatMul.weight`;
    inits.delete(`model.layers.${m[1]}.mlp.gate_proj.MatMul.weight`);
    inits.delete(`model.layers.${m[1]}.mlp.up_proj.MatMul.weight`);
    inits.set(wName, { dtype: 'float32', dims: [H, 2 * I], data: w });
    inits.set(`${pre}/split_sizes`, { dtype: 'int64', dims: [2], data: BigInt64Array.from([BigInt(I), BigInt(I)]) });
    nodes.push({ op: 'MatMul', name: `${pre}/gate_up_proj/MatMul`, inputs: [n.inputs[0]!, wName], outputs: [`${pre}/gate_up_proj/MatMul/output_0`], attrs: {} });
    nodes.push({ op: 'Split', name: `${pre}/gate_up_proj/Split`, inputs: [`${pre}/gate_up_proj/MatMul/output_0`, `${pre}/split_sizes`], outputs: [`${pre}/gate_proj/MatMul/output_0`, `${pre}/up_proj/MatMul/output_0`], attrs: { axis: -1 } });
  }
  return { ...g, nodes, initializers: inits };
}

/** Deterministic values in [−1, 1). */
function noise(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = ((x >>> 0) / 2 ** 32) * 2 - 1;
  }
  return out;
}

const PROMPT = [5n, 17n, 42n, 9n, 100n, 3n];

/** One prompt through an fp32 genai or standard session; `extra` feeds (adapter inputs) added. */
async function logits(bytes: Uint8Array, standardLayout: boolean, extra: Record<string, ort.Tensor> = {}): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(bytes);
  const f: Record<string, ort.Tensor> = {
    input_ids: new ort.Tensor('int64', BigInt64Array.from(PROMPT), [1, PROMPT.length]),
    attention_mask: new ort.Tensor('int64', new BigInt64Array(PROMPT.length).fill(1n), [1, PROMPT.length]),
    ...extra,
  };
  if (standardLayout) f['position_ids'] = new ort.Tensor('int64', BigInt64Array.from(PROMPT.map((_, i) => BigInt(i))), [1, PROMPT.length]);
  for (let l = 0; l < 2; l++) for (const k of ['key', 'value']) f[`past_key_values.${l}.${k}`] = new ort.Tensor('float32', new Float32Array(0), [1, 2, 0, 16]);
  const out = (await s.run(f))['logits']!.data as Float32Array;
  await s.release();
  return out;
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

// fp32 rounding of the same math in another association order (packed vs separate products, branch
// vs merged weight) on logits of scale ≈ 2 (see model-gen's genai.test.ts: 7e-7 between layouts).
const FP32_TOL = 2e-5;

describe('genai layout: packed linears', () => {
  test('rewrite: one branch per targeted slice with its own width; slices no target names get zero blocks; disabled = base bit for bit; a q_proj-only update = the standard layout merged', async () => {
    const fp32 = genai.files.get('onnx/model.onnx')!;
    const all = rewriteModel(fp32, { targets: genai.shape.modules.map((x) => x.path) });
    expect(all.branches.length).toBe(genai.shape.modules.length);
    const q = all.branches.find((b) => b.path === 'model.layers.1.self_attn.q_proj')!;
    const k = all.branches.find((b) => b.path === 'model.layers.1.self_attn.k_proj')!;
    const o = all.branches.find((b) => b.path === 'model.layers.1.self_attn.o_proj')!;
    expect([q.node, q.n, q.m, k.node, k.m]).toEqual(['/model/layers.1/attn/qkv_proj/MatMul', 64, 64, '/model/layers.1/attn/qkv_proj/MatMul', 32]);
    expect([o.node, o.graphPath]).toEqual(['/model/layers.1/attn/o_proj/MatMul', 'model.layers.1.attn.o_proj']);

    const qOnly = genai.shape.modules.filter((x) => x.path.endsWith('q_proj')).map((x) => x.path);
    const r = rewriteModel(fp32, { targets: qOnly });
    expect(r.branches.map((b) => b.path)).toEqual(qOnly);
    const g = decodeModel(r.bytes).graph!;
    expect(g.node!.filter((n) => n.opType === 'ConstantOfShape').length).toBe(2 * qOnly.length);
    const base = await logits(fp32, false);
    const empty = (m: number): Record<string, ort.Tensor> => Object.fromEntries(r.branches.flatMap((b) => [[b.inputA, new ort.Tensor('float32', new Float32Array(0), [b.n, 0])], [b.inputB, new ort.Tensor('float32', new Float32Array(0), [0, m])]]));
    expect(maxDiff(await logits(r.bytes, false, empty(64)), base)).toBe(0);

    // One rank-4 update on layer 1's q_proj: branch on the packed model vs W0 + s·B·Aᵀ merged into
    // the separate q_proj weight of the standard layout (merge.ts' unpacked path).
    const rho = 4;
    const s = 0.5;
    const A = noise(64 * rho, 7);
    const B = noise(64 * rho, 8);
    const feeds = empty(64);
    const Bt = new Float32Array(rho * 64);
    for (let oo = 0; oo < 64; oo++) for (let j = 0; j < rho; j++) Bt[j * 64 + oo] = s * B[oo * rho + j]!;
    feeds[q.inputA] = new ort.Tensor('float32', A, [64, rho]);
    feeds[q.inputB] = new ort.Tensor('float32', Bt, [rho, 64]);
    const adapted = await logits(r.bytes, false, feeds);
    const ref = await logits(mergeModel(standard.files.get('onnx/model.onnx')!, [{ path: q.path, n: 64, m: 64, rho, s, A, B }]), true);
    expect(maxDiff(adapted, ref)).toBeLessThan(FP32_TOL);
    expect(maxDiff(ref, base)).toBeGreaterThan(100 * FP32_TOL);

    // q4 (MatMulNBits qkv_proj): the same branch on the 4-bit model changes the logits as the fp32
    // merge changes the fp32 model, up to how the 4-bit network responds differently to the same
    // perturbation; a branch on the wrong columns would change them by something else entirely.
    const q4 = rewriteModel(genai.files.get('onnx/model_q4.onnx')!, { targets: qOnly });
    const q4Base = await logits(q4.bytes, false, empty(64));
    const q4Adapted = await logits(q4.bytes, false, feeds);
    const effect = new Float32Array(base.length).map((_, i) => ref[i]! - base[i]!);
    const q4Effect = new Float32Array(base.length).map((_, i) => q4Adapted[i]! - q4Base[i]!);
    // Measured 0.21 of the effect (0.11 on 0.53); no branch, or one on k's or v's columns, is ≥ 1.
    expect(maxDiff(effect, q4Effect)).toBeLessThan(0.4 * maxDiff(ref, base));
  });

  test('mergeModel: ΔW of q/k/v (and the unpacked attn/mlp modules) lands in the packed weight\'s columns — the same logits as the standard layout merged', async () => {
    const adapter = createAdapter({ method: 'LORA', shape: genai.shape, nonzero: true, seed: 3, config: { lora_alpha: 32 } });
    const updates = await materializeAdapter(adapter);
    const packed = await logits(mergeModel(genai.files.get('onnx/model.onnx')!, updates), false);
    const ref = await logits(mergeModel(standard.files.get('onnx/model.onnx')!, updates), true);
    const base = await logits(standard.files.get('onnx/model.onnx')!, true);
    expect(maxDiff(packed, ref)).toBeLessThan(FP32_TOL);
    expect(maxDiff(ref, base)).toBeGreaterThan(100 * FP32_TOL);
  });

  for (const method of listMethods().map((x) => x.peftType)) {
    test(`${method}: verify fp32, fp16, q4, q4f16 — disabled = base exactly, adapter within tolerance`, async () => {
      const adapter = createAdapter({ method, shape: genai.shape, nonzero: true, seed: 2, config: CONFIG[method] ?? {} });
      for (const dtype of ['fp32', 'fp16', 'q4', 'q4f16'] as const) {
        const r = await verify({ model: path.join(root, 'genai'), adapter, dtype });
        expect(r.base_max_abs_diff, dtype).toBe(0);
        expect(r.max_abs_diff, dtype).toBeLessThanOrEqual(r.tolerance);
        expect(r.outputs, dtype).toEqual(['logits']);
        console.log(JSON.stringify({ method, dtype, max_abs_diff: r.max_abs_diff, tolerance: r.tolerance, dtype_error: r.dtype_error, adapter_effect: r.adapter_effect }));
        // fp32: rounding only, far below the adapter's effect (4-bit error is larger than that).
        if (dtype === 'fp32') expect(r.adapter_effect).toBeGreaterThan(100 * r.max_abs_diff);
        // fp16: the tolerance (≈ 3 · 2.3e-3 measured fp16 error) stays below every method's effect
        // (VeRA's 0.021 the smallest), so a missing or misplaced branch fails.
        if (dtype === 'fp16') expect(r.adapter_effect).toBeGreaterThan(r.tolerance);
      }
    });
  }

  test('packed gate_up_proj (gate | up halves, Phi-3 style, as a Split reads them): per-slice branches on gate_proj / up_proj = the standard layout merged; disabled exact', async () => {
    const d = { ...modelDims('llama', 'tiny'), vocabSize: standard.config['vocab_size'] as number };
    const bytes = encodeGenai(packGateUp(buildGenaiLlama(d, 5).graph, d.hiddenSize, d.intermediateSize));
    const r = rewriteModel(bytes, { targets: genai.shape.modules.map((x) => x.path) });
    const gate = r.branches.find((b) => b.path === 'model.layers.0.mlp.gate_proj')!;
    expect([gate.node, gate.m, r.branches.length]).toEqual(['/model/layers.0/mlp/gate_up_proj/MatMul', 128, genai.shape.modules.length]);
    const base = await logits(bytes, false);
    // The packed variant is the same model (a check on the construction below).
    expect(maxDiff(base, await logits(genai.files.get('onnx/model.onnx')!, false))).toBeLessThan(FP32_TOL);
    const adapter = createAdapter({ method: 'LORA', shape: genai.shape, nonzero: true, seed: 6, config: { target_modules: ['gate_proj', 'up_proj'], lora_alpha: 32 } });
    const updates = await materializeAdapter(adapter);
    const feeds: Record<string, ort.Tensor> = {};
    for (const b of r.branches) {
      const u = updates.find((x) => x.path === b.path);
      const rho = u?.rho ?? 0;
      const Bt = new Float32Array(rho * b.m);
      for (let o = 0; o < b.m; o++) for (let j = 0; j < rho; j++) Bt[j * b.m + o] = u!.s * u!.B[o * rho + j]!;
      feeds[b.inputA] = new ort.Tensor('float32', u ? u.A : new Float32Array(0), [b.n, rho]);
      feeds[b.inputB] = new ort.Tensor('float32', Bt, [rho, b.m]);
    }
    const disabled = Object.fromEntries(r.branches.flatMap((b) => [[b.inputA, new ort.Tensor('float32', new Float32Array(0), [b.n, 0])], [b.inputB, new ort.Tensor('float32', new Float32Array(0), [0, b.m])]]));
    expect(maxDiff(await logits(r.bytes, false, disabled), base)).toBe(0);
    const ref = await logits(mergeModel(standard.files.get('onnx/model.onnx')!, updates), true);
    expect(maxDiff(await logits(r.bytes, false, feeds), ref)).toBeLessThan(FP32_TOL);
    expect(maxDiff(ref, base)).toBeGreaterThan(100 * FP32_TOL);
    // mergeModel on the packed weight too.
    expect(maxDiff(await logits(mergeModel(bytes, updates), false), ref)).toBeLessThan(FP32_TOL);
  });

  test('plugin merge mode: packed slices keep branches, the unpacked fp32 targets are merged; verify passes', async () => {
    const r = rewriteModel(genai.files.get('onnx/model.onnx')!, { targets: genai.shape.modules.map((x) => x.path), mode: 'merge' });
    expect(r.branches.map((b) => b.path.split('.').pop()).sort()).toEqual(['k_proj', 'k_proj', 'q_proj', 'q_proj', 'v_proj', 'v_proj']);
    expect(r.merged.length).toBe(genai.shape.modules.length - 6);
    const adapter = createAdapter({ method: 'LORA', shape: genai.shape, nonzero: true, seed: 4 });
    const v = await verify({ model: path.join(root, 'genai'), adapter, mode: 'merge' });
    expect(v.base_max_abs_diff).toBe(0);
    expect(v.max_abs_diff).toBeLessThanOrEqual(v.tolerance);
    expect(v.adapter_effect).toBeGreaterThan(100 * v.max_abs_diff);
  });

  test('generate() with the KV cache (fp32, fp16): adapter tokens = the standard layout merged offline, disabled = base tokens', async () => {
    env.allowRemoteModels = false;
    env.localModelPath = `${root}/`;
    const adapter = createAdapter({ method: 'LORA', shape: genai.shape, nonzero: true, seed: 1, config: { lora_alpha: 64 } });
    // Large enough to change greedy decoding of a random tiny model.
    for (const t of adapter.params.values()) for (let i = 0; i < t.data.length; i++) t.data[i] = t.data[i]! * 30;
    const merged = path.join(root, 'standard-merged');
    await mkdir(path.join(merged, 'onnx'), { recursive: true });
    for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json']) await copyFile(path.join(root, 'standard', f), path.join(merged, f));
    const fp32 = new Uint8Array(await readFile(path.join(root, 'standard', 'onnx', 'model.onnx')));
    await writeFile(path.join(merged, 'onnx', 'model.onnx'), mergeModel(fp32, await materializeAdapter(adapter)));
    const tok = await AutoTokenizer.from_pretrained('genai');
    const inputs = tok('the quick brown fox');
    const gen = async (model: unknown): Promise<number[]> => {
      const out = await (model as { generate: (o: unknown) => Promise<{ tolist: () => bigint[][] }> }).generate({ ...inputs, max_new_tokens: 10, do_sample: false });
      return out.tolist()[0]!.map(Number);
    };
    const base = await gen(await AutoModelForCausalLM.from_pretrained('genai', { dtype: 'fp32' }));
    const mergedTokens = await gen(await AutoModelForCausalLM.from_pretrained('standard-merged', { dtype: 'fp32' }));
    expect(mergedTokens).not.toEqual(base);
    const model = await from_pretrained(env, AutoModelForCausalLM, 'genai', { dtype: 'fp32', adapters: { a: adapter } });
    expect(await gen(model)).toEqual(mergedTokens);
    model.disable_adapters();
    expect(await gen(model)).toEqual(base);

    // fp16 (model_fp16.onnx, GroupQueryAttention in fp16) on onnxruntime-node: generate() with the KV
    // cache = greedy decoding without the cache (the whole sequence at every step) on the same model,
    // adapter and disabled alike; disabled = the untouched fp16 model's tokens; and the adapter's
    // tokens = the fp32 merged model's (the ×30 adapter moves the logits far more than fp16's ~2e-3).
    const uncached = async (model: unknown): Promise<number[]> => {
      const call = model as (x: unknown) => Promise<{ logits: { data: Float32Array | Uint16Array; dims: number[]; type: string } }>;
      const ids = Array.from((inputs as { input_ids: { data: BigInt64Array } }).input_ids.data, Number);
      for (let k = 0; k < 10; k++) {
        const L = ids.length;
        const out = (await call({ input_ids: new Tensor('int64', BigInt64Array.from(ids, BigInt), [1, L]), attention_mask: new Tensor('int64', new BigInt64Array(L).fill(1n), [1, L]) })).logits;
        const v = out.type === 'float16' ? fromHalfBits(out.data as Uint16Array) : (out.data as Float32Array);
        const V = out.dims[2]!;
        let best = 0;
        for (let j = 1; j < V; j++) if (v[(L - 1) * V + j]! > v[(L - 1) * V + best]!) best = j;
        ids.push(best);
      }
      return ids;
    };
    const plain16 = await AutoModelForCausalLM.from_pretrained('genai', { dtype: 'fp16' });
    const base16 = await gen(plain16);
    expect(base16).toEqual(await uncached(plain16));
    const model16 = await from_pretrained(env, AutoModelForCausalLM, 'genai', { dtype: 'fp16', adapters: { a: adapter } });
    const adapted16 = await gen(model16);
    expect(adapted16).toEqual(await uncached(model16));
    expect(adapted16).toEqual(mergedTokens);
    expect(adapted16).not.toEqual(base16);
    model16.disable_adapters();
    expect(await gen(model16)).toEqual(base16);
    expect(await uncached(model16)).toEqual(base16);
  });
});
