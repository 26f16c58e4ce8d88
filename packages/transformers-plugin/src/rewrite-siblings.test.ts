/**
 * Sibling fusion (rewrite-siblings.ts, sibling-feeds.ts): linears reading one tensor share one
 * x·[A′₁ | A′₂ | …] and one product with blockdiag(s·B′ᵢᵀ). Contracts: the fused feeds are the
 * per-module ones placed as stated (hand-written expectations); the fused graph has one pair of
 * products per group (q/k/v, gate/up, a packed genai product's slices) in the main graph and in a
 * merged decoder's If branches; through the plugin, fused = unfused within fp32 rounding on tiny
 * LLaMA (standard, merged-decoder, genai layouts) and GPT-2 across fp32 / q4 / fp16, for random
 * per-module ranks with modules left out, and disabled = plain transformers.js bit for bit.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import * as ort from 'onnxruntime-node';
import { AutoModelForCausalLM, AutoTokenizer, env } from '@huggingface/transformers';
import { createAdapter } from '@tensorpeft/core';
import { decodeModel, writeModel, type GeneratedModel } from '@tensorpeft/model-gen';
import { from_pretrained } from './plugin.js';
import { rewriteModel } from './rewrite.js';
import { parseSiblingInput, siblingInputNames } from './rewrite-siblings.js';
import { fuseSiblingFeeds, siblingView } from './sibling-feeds.js';

const DTYPES = ['q4', 'fp16'] as const;
let root: string;
const models = new Map<string, GeneratedModel>();
const saved = { allowRemoteModels: env.allowRemoteModels, localModelPath: env.localModelPath };
beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'tp-siblings-'));
  env.allowRemoteModels = false;
  env.localModelPath = `${root}/`;
  models.set('llama', await writeModel({ arch: 'llama', size: 'tiny', seed: 4, dtypes: DTYPES }, path.join(root, 'llama')));
  models.set('llama-merged', await writeModel({ arch: 'llama', size: 'tiny', seed: 6, layout: 'merged-decoder', dtypes: DTYPES }, path.join(root, 'llama-merged')));
  models.set('llama-genai', await writeModel({ arch: 'llama', size: 'tiny', seed: 5, layout: 'genai', dtypes: DTYPES }, path.join(root, 'llama-genai')));
  models.set('gpt2', await writeModel({ arch: 'gpt2', size: 'tiny', seed: 4, gpt2Conv1d: 'MatMul', dtypes: DTYPES }, path.join(root, 'gpt2')));
});
afterAll(async () => {
  Object.assign(env, saved);
  await rm(root, { recursive: true, force: true });
});

describe('fused feeds (sibling-feeds.ts)', () => {
  test('A = [A′₁ | A′₂ | A′₃] and B = blockdiag(B₁, B₂, B₃) as written by hand; a rank-0 module adds nothing', () => {
    const members = [
      { path: 'l.q', m: 2 },
      { path: 'l.k', m: 1 },
      { path: 'l.v', m: 2 },
    ];
    const { inputA, inputB } = siblingInputNames(members);
    expect(parseSiblingInput(inputA)).toEqual({ members, side: 'A' });
    const view = siblingView({ inputNames: ['input_ids', inputA, inputB], inputMetadata: [{ name: 'input_ids', shape: [1, 'seq'] }, { name: inputA, shape: [2, 'rho_s0'], type: 'float32' }, { name: inputB, shape: ['rho_s0', 5], type: 'float32' }] })!;
    expect(view.names).toEqual(['input_ids', 'tensorpeft.l.q.A', 'tensorpeft.l.q.B', 'tensorpeft.l.k.A', 'tensorpeft.l.k.B', 'tensorpeft.l.v.A', 'tensorpeft.l.v.B']);
    expect(view.meta.find((m) => m.name === 'tensorpeft.l.k.B')!.shape).toEqual(['rho', 1]);
    const t = (data: number[], dims: number[]) => new ort.Tensor('float32', Float32Array.from(data), dims);
    const feeds = {
      input_ids: 'ids',
      // q: ρ = 1, k: ρ = 0 (left out), v: ρ = 2; n = 2.
      'tensorpeft.l.q.A': t([1, 2], [2, 1]),
      'tensorpeft.l.q.B': t([3, 4], [1, 2]),
      'tensorpeft.l.k.A': t([], [2, 0]),
      'tensorpeft.l.k.B': t([], [0, 1]),
      'tensorpeft.l.v.A': t([5, 6, 7, 8], [2, 2]),
      'tensorpeft.l.v.B': t([9, 10, 11, 12], [2, 2]),
    };
    const out = fuseSiblingFeeds(view, feeds);
    expect(Object.keys(out).sort()).toEqual(['input_ids', inputA, inputB].sort());
    const A = out[inputA] as ort.Tensor;
    const B = out[inputB] as ort.Tensor;
    expect(A.dims).toEqual([2, 3]);
    expect([...(A.data as Float32Array)]).toEqual([1, 5, 6, 2, 7, 8]);
    expect(B.dims).toEqual([3, 5]);
    // Columns: q (2) | k (1) | v (2); rows: q's ρ = 1, then v's 2.
    expect([...(B.data as Float32Array)]).toEqual([3, 4, 0, 0, 0, 0, 0, 0, 9, 10, 0, 0, 0, 11, 12]);
  });

  test('a GPU-resident feed is refused with a typed error naming the module and the way out', () => {
    const members = [
      { path: 'l.q', m: 1 },
      { path: 'l.k', m: 1 },
    ];
    const { inputA, inputB } = siblingInputNames(members);
    const view = siblingView({ inputNames: [inputA, inputB], inputMetadata: [{ name: inputA, shape: [1, 'r'] }, { name: inputB, shape: ['r', 2] }] })!;
    const cpu = new ort.Tensor('float32', new Float32Array(0), [1, 0]);
    const gpu = { type: 'float32', data: new Float32Array(0), dims: [1, 0], location: 'gpu-buffer' };
    const feeds = { 'tensorpeft.l.q.A': gpu, 'tensorpeft.l.q.B': cpu, 'tensorpeft.l.k.A': cpu, 'tensorpeft.l.k.B': cpu };
    expect(() => fuseSiblingFeeds(view, feeds)).toThrow(/module l\.q: a GPU-resident .*fuse_siblings: false/);
  });
});

/** Every node of `g` and its subgraphs. */
function allNodes(g: { node?: Array<{ opType?: string | null; name?: string | null; attribute?: Array<{ g?: unknown; graphs?: unknown[] | null }> | null }> | null }): Array<{ opType?: string | null; name?: string | null }> {
  const out: Array<{ opType?: string | null; name?: string | null }> = [];
  for (const n of g.node ?? []) {
    out.push(n);
    for (const a of n.attribute ?? []) for (const sg of a.g ? [a.g] : (a.graphs ?? [])) out.push(...allNodes(sg as never));
  }
  return out;
}

describe('fused graph', () => {
  test('LLaMA: one group for q/k/v and one for gate/up per layer; o/down keep per-module inputs; 2 branch MatMuls per group', () => {
    const m = models.get('llama')!;
    const targets = m.shape.modules.map((x) => x.path);
    const r = rewriteModel(m.files.get('onnx/model.onnx')!, { targets, fuseSiblings: true });
    const g = decodeModel(r.bytes).graph!;
    const names = g.input!.map((v) => v.name!).filter((n) => n.startsWith('tensorpeft.'));
    const groups = names.filter((n) => parseSiblingInput(n)?.side === 'A').map((n) => parseSiblingInput(n)!.members.map((x) => `${x.path.split('.').at(-1)}=${x.m}`).join(' '));
    expect(groups).toEqual(['q_proj=64 k_proj=32 v_proj=32', 'gate_proj=128 up_proj=128', 'q_proj=64 k_proj=32 v_proj=32', 'gate_proj=128 up_proj=128']);
    expect(names.filter((n) => !n.startsWith('tensorpeft.siblings:')).map((n) => n.split('.').slice(-2).join('.'))).toEqual(['o_proj.A', 'o_proj.B', 'down_proj.A', 'down_proj.B', 'o_proj.A', 'o_proj.B', 'down_proj.A', 'down_proj.B']);
    const branchMatMuls = allNodes(g).filter((n) => n.opType === 'MatMul' && n.name!.startsWith('/tensorpeft/'));
    // 2 layers × (2 groups + o + down) × 2 products (unfused: 2 × 7 × 2 = 28).
    expect(branchMatMuls.length).toBe(2 * (2 * 2 + 2 * 2));
    // The default (no option) keeps per-module inputs, what direct users of rewriteModel feed.
    expect(rewriteModel(m.files.get('onnx/model.onnx')!, { targets }).branches.every((b) => b.inputA === `tensorpeft.${b.path}.A`)).toBe(true);
  });

  test('mixed batches stay per module: fuseSiblings is ignored there (stacked per-module inputs, mixed-rewrite.ts)', () => {
    const m = models.get('llama')!;
    const targets = m.shape.modules.map((x) => x.path);
    const r = rewriteModel(m.files.get('onnx/model.onnx')!, { targets, fuseSiblings: true, mixedBatches: true });
    const names = decodeModel(r.bytes).graph!.input!.map((v) => v.name!);
    expect(names.filter((n) => n.startsWith('tensorpeft.siblings:'))).toEqual([]);
    expect(names.filter((n) => /^tensorpeft\..*\.A$/.test(n) && !n.startsWith('tensorpeft.mixed.')).length).toBe(targets.length);
  });

  test('merged decoder: the groups inside both If branches share one declared input pair', () => {
    const m = models.get('llama-merged')!;
    const r = rewriteModel(m.files.get('onnx/model.onnx')!, { targets: m.shape.modules.map((x) => x.path), fuseSiblings: true });
    const g = decodeModel(r.bytes).graph!;
    const fused = g.input!.filter((v) => v.name!.startsWith('tensorpeft.siblings:'));
    expect(fused.length).toBe(2 * 2 * 2);
    const sub = allNodes(g).filter((n) => n.opType === 'MatMul' && /^\/tensorpeft\/siblings\d+\/MatMul_A$/.test(n.name!));
    // 2 layers × 2 groups, in each of the two If branches.
    expect(sub.length).toBe(2 * 2 * 2);
  });

  test('genai packed qkv_proj with every slice targeted: the fused product is the packed delta (no Split, no Concat of deltas)', () => {
    const m = models.get('llama-genai')!;
    const r = rewriteModel(m.files.get('onnx/model.onnx')!, { targets: m.shape.modules.map((x) => x.path), fuseSiblings: true });
    const nodes = allNodes(decodeModel(r.bytes).graph!);
    const ours = nodes.filter((n) => n.name!.startsWith('/tensorpeft/'));
    expect(ours.filter((n) => n.opType === 'Concat' && n.name!.endsWith('Concat_delta')).length).toBe(0);
    expect(ours.filter((n) => n.opType === 'Split').length).toBe(2); // gate/up (separate products here) only
    // 2 layers × (packed q|k|v + gate/up + o + down) × 2 products.
    expect(ours.filter((n) => n.opType === 'MatMul').length).toBe(2 * (4 * 2));
  });

  test('GPT-2: no siblings (c_attn is one packed module, the others read distinct tensors): the graph equals the unfused one', () => {
    const m = models.get('gpt2')!;
    const targets = m.shape.modules.map((x) => x.path);
    const fused = rewriteModel(m.files.get('onnx/model.onnx')!, { targets, fuseSiblings: true });
    const plain = rewriteModel(m.files.get('onnx/model.onnx')!, { targets });
    expect(decodeModel(fused.bytes).graph!.input!.map((v) => v.name)).toEqual(decodeModel(plain.bytes).graph!.input!.map((v) => v.name));
  });
});

type Model = ((x: unknown) => Promise<{ logits: { data: Float32Array } }>) & {
  load_adapter(a: unknown, o: { adapter_name: string }): Promise<unknown>;
  add_weighted_adapter(names: string[], w: number[], name: string): Promise<unknown>;
  set_adapter(name: string): void;
  disable_adapters(): void;
  delete_adapter(name: string | string[]): void;
  dispose(): Promise<unknown>;
};

function maxAbs(a: Float32Array): number {
  let d = 0;
  for (const x of a) d = Math.max(d, Math.abs(x));
  return d;
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

describe('through the plugin: fused = unfused within fp32 rounding, disabled = base bit for bit', () => {
  for (const id of ['llama', 'llama-merged', 'llama-genai', 'gpt2'])
    for (const dtype of ['fp32', ...DTYPES]) {
      test(`${id} ${dtype}: random per-module ranks, modules left out`, async () => {
        const m = models.get(id)!;
        const tok = await AutoTokenizer.from_pretrained(id);
        const inputs = tok('the quick brown fox jumps');
        const plain = (await AutoModelForCausalLM.from_pretrained(id, { dtype } as never)) as unknown as Model;
        const base = Float32Array.from((await plain(inputs)).logits.data);
        await plain.dispose();
        const fused = (await from_pretrained(env, AutoModelForCausalLM, id, { dtype, fuse_siblings: true } as never)) as unknown as Model;
        const unfused = (await from_pretrained(env, AutoModelForCausalLM, id, { dtype, fuse_siblings: false } as never)) as unknown as Model;
        try {
          expect(maxDiff(Float32Array.from((await fused(inputs)).logits.data), base)).toBe(0);
          const kinds = [...new Set(m.shape.modules.map((x) => x.path.split('.').at(-1)!))];
          let run = 0;
          await fc.assert(
            fc.asyncProperty(
              fc.subarray(kinds, { minLength: 1 }),
              fc.subarray(kinds, { minLength: 1 }),
              fc.integer({ min: 1, max: 6 }),
              fc.integer({ min: 1, max: 6 }),
              async (t1, t2, r1, r2) => {
                // Two LoRAs on random module sets, summed ("cat"): per module rank r1, r2, r1 + r2,
                // or 0 where neither targets it (left out of the adapter).
                const a1 = createAdapter({ method: 'LORA', shape: m.shape, nonzero: true, seed: 11 + run, config: { r: r1, lora_alpha: 2 * r1, target_modules: t1 } });
                const a2 = createAdapter({ method: 'LORA', shape: m.shape, nonzero: true, seed: 31 + run, config: { r: r2, lora_alpha: 2 * r2, target_modules: t2 } });
                const name = `mix${run++}`;
                const out: Float32Array[] = [];
                for (const model of [fused, unfused]) {
                  await model.load_adapter(a1, { adapter_name: `${name}a` });
                  await model.load_adapter(a2, { adapter_name: `${name}b` });
                  await model.add_weighted_adapter([`${name}a`, `${name}b`], [0.8, -1.3], name);
                  model.set_adapter(name);
                  out.push(Float32Array.from((await model(inputs)).logits.data));
                  model.delete_adapter([`${name}a`, `${name}b`, name]);
                }
                const [f, u] = out as [Float32Array, Float32Array];
                // The fused products hold the same terms as the per-module ones; zero blocks add exact
                // zeros, so only the order in which the kernel sums the (≤ 64-wide here) dot products
                // may differ: a few fp32 ulps of each product, carried to logits of scale ≈ 1–10.
                // fp32 activations (fp32, q4): 1e-5 relative, ~100 ulps. fp16 graphs round each delta
                // and every activation after it to binary16, so a last-bit difference of a branch
                // product can flip one fp16 rounding (2⁻¹¹ relative) and travel to the logits: 2⁻¹⁰
                // relative (measured 1.3e-4 on logits ≈ 2, merged decoder). A module's delta in the
                // wrong place changes the logits by the adapter's effect, checked to be far larger.
                const tol = (dtype === 'fp16' ? 2 ** -10 : 1e-5) * Math.max(1, maxAbs(u));
                expect(maxDiff(f, u)).toBeLessThanOrEqual(tol);
                expect(maxDiff(u, base)).toBeGreaterThan((dtype === 'fp16' ? 10 : 100) * tol);
              },
            ),
            { numRuns: 3, seed: 12 },
          );
          fused.disable_adapters();
          expect(maxDiff(Float32Array.from((await fused(inputs)).logits.data), base)).toBe(0);
        } finally {
          await fused.dispose();
          await unfused.dispose();
        }
      }, 120_000);
    }
});
