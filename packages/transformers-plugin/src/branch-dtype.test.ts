/**
 * fp32 side branches on fp16 graphs (branch-dtype.ts, `branchDtype: 'float32'`): the device choice,
 * the graph ORT really runs on its CPU EP (no per-run Cast of A′/B′), disabled = base bit for bit,
 * and the branch's numbers against an independent float64 reference.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { writeModel, type GeneratedModel } from '@tensorpeft/model-gen';
import { branchDtypeForDevice } from './branch-dtype.js';
import { fromHalfBits, toHalfBits } from './dtype.js';
import { decodeModel, rewriteModel } from './rewrite.js';

const { onnx } = onnxProto;
const DT = onnx.TensorProto.DataType;
const INT = onnx.AttributeProto.AttributeType.INT;

describe('branchDtypeForDevice', () => {
  test('CPU providers (and transformers.js’ default device) get fp32 branches; GPU providers keep the activation dtype', () => {
    for (const d of [undefined, null as never, '', 'cpu', 'wasm']) expect(branchDtypeForDevice(d, 'm/onnx/model_fp16.onnx'), String(d)).toBe('float32');
    for (const d of ['webgpu', 'cuda', 'dml', 'coreml', 'webnn', 'webnn-gpu', 'auto', 'gpu']) expect(branchDtypeForDevice(d, 'm/onnx/model_fp16.onnx'), d).toBe('activation');
    // Per-file devices are looked up by the file name transformers.js uses (no dtype suffix).
    const perFile = { encoder_model: 'cpu', decoder_model_merged: 'webgpu' };
    expect(branchDtypeForDevice(perFile, 'w/onnx/decoder_model_merged_q4f16.onnx')).toBe('activation');
    expect(branchDtypeForDevice(perFile, 'w/onnx/encoder_model_fp16.onnx')).toBe('float32');
    // A file the record does not name runs on transformers.js' default device (a CPU provider).
    expect(branchDtypeForDevice({ decoder_model_merged: 'webgpu' }, 'https://hf.co/x/resolve/main/onnx/model.onnx?download=1')).toBe('float32');
  });
});

/** Which graph inputs are float (1) / float16 (10). */
function adapterInputTypes(bytes: Uint8Array): Set<number> {
  return new Set((decodeModel(bytes).graph!.input ?? []).filter((v) => v.name!.startsWith('tensorpeft.')).map((v) => v.type!.tensorType!.elemType!));
}

/** The graph onnxruntime-node's CPU EP runs (all optimizations, as transformers.js creates sessions): its Cast nodes. */
async function optimizedCasts(bytes: Uint8Array, dir: string, name: string): Promise<{ total: number; ofAdapterInputs: number }> {
  const file = path.join(dir, `${name}.opt.onnx`);
  const s = await ort.InferenceSession.create(bytes, { optimizedModelFilePath: file, logSeverityLevel: 3 });
  await s.release();
  const casts = (decodeModel(new Uint8Array(await readFile(file))).graph!.node ?? []).filter((n) => n.opType === 'Cast');
  return { total: casts.length, ofAdapterInputs: casts.filter((n) => (n.input ?? []).some((i) => i.startsWith('tensorpeft.'))).length };
}

let dir: string;
const models = new Map<string, GeneratedModel>();
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'tp-branch-dtype-'));
  models.set('gpt2', await writeModel({ arch: 'gpt2', size: 'tiny', seed: 4, gpt2Conv1d: 'MatMul', dtypes: ['fp16', 'q4f16'] }, path.join(dir, 'gpt2')));
  models.set('llama', await writeModel({ arch: 'llama', size: 'tiny', seed: 4, layout: 'genai', dtypes: ['fp16', 'q4f16'] }, path.join(dir, 'llama')));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the graph ORT’s CPU EP runs', () => {
  for (const [arch, dt] of [['gpt2', 'fp16'], ['gpt2', 'q4f16'], ['llama', 'fp16'], ['llama', 'q4f16']] as const) {
    test(`${arch} ${dt}: A′/B′ declared float32, no Cast of them per run, fewer Casts than fp16 branches`, async () => {
      const m = models.get(arch)!;
      const file = m.files.get(`onnx/model_${dt}.onnx`)!;
      const targets = m.shape.modules.map((x) => x.path);
      const f32 = rewriteModel(file, { targets, branchDtype: 'float32' });
      const f16 = rewriteModel(file, { targets, branchDtype: 'activation' });
      expect(f32.branches.length).toBe(f16.branches.length);
      expect(f32.branches.length).toBeGreaterThan(0);
      expect(adapterInputTypes(f32.bytes)).toEqual(new Set([DT.FLOAT]));
      expect(adapterInputTypes(f16.bytes)).toEqual(new Set([DT.FLOAT16]));
      const base = await optimizedCasts(file, dir, `${arch}-${dt}-base`);
      const c32 = await optimizedCasts(f32.bytes, dir, `${arch}-${dt}-f32`);
      const c16 = await optimizedCasts(f16.bytes, dir, `${arch}-${dt}-f16`);
      console.log(JSON.stringify({ arch, dt, casts: { base: base.total, float32_branch: c32.total, fp16_branch: c16.total }, casts_of_adapter_inputs: { float32_branch: c32.ofAdapterInputs, fp16_branch: c16.ofAdapterInputs } }));
      // fp16 branches: ORT casts every A′ and B′ to fp32 on each run (the cost this option removes).
      expect(c16.ofAdapterInputs).toBe(2 * f16.branches.length);
      expect(c32.ofAdapterInputs).toBe(0);
      expect(c32.total).toBeLessThan(c16.total);
      // fp16 MatMul graphs: ORT drops every Cast the fp32 branch adds (the widened x and the fp16
      // delta meet the casts it inserts around its fp32-run MatMul/Add): as many Casts as the base.
      if (dt === 'fp16') expect(c32.total).toBe(base.total);
      // With sibling fusion (the plugin's load-path default, rewrite-siblings.ts) too: fused inputs
      // float32, none of them cast per run.
      const fused = rewriteModel(file, { targets, branchDtype: 'float32', fuseSiblings: true });
      expect(adapterInputTypes(fused.bytes)).toEqual(new Set([DT.FLOAT]));
      const cf = await optimizedCasts(fused.bytes, dir, `${arch}-${dt}-f32-fused`);
      expect(cf.ofAdapterInputs).toBe(0);
      if (dt === 'fp16') expect(cf.total).toBe(base.total);
    });
  }
});

const vi = (name: string, elemType: number, dims: Array<number | string>) => ({
  name,
  type: { tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
});

/** y = LayerNorm(x) · W, all fp16: a LayerNormalization whose only readers lack fp16 CPU kernels (ORT runs it in fp32). */
function lnLinear(n: number, m: number, w: Uint16Array, withLn: boolean): Uint8Array {
  const F16 = DT.FLOAT16;
  const nodes = withLn
    ? [
        { name: '/blk/ln/LayerNormalization', opType: 'LayerNormalization', input: ['x', 'ln.g', 'ln.b'], output: ['h'], attribute: [{ name: 'axis', type: INT, i: -1 }] },
        { name: '/blk/proj/MatMul', opType: 'MatMul', input: ['h', 'proj.w'], output: ['y'] },
      ]
    : [{ name: '/blk/proj/MatMul', opType: 'MatMul', input: ['x', 'proj.w'], output: ['y'] }];
  const half = (v: number[]) => new Uint8Array(toHalfBits(Float32Array.from(v)).buffer);
  const inits = [{ name: 'proj.w', dataType: F16, dims: [n, m], rawData: new Uint8Array(w.buffer.slice(0)) }];
  if (withLn) inits.push({ name: 'ln.g', dataType: F16, dims: [n], rawData: half(Array.from({ length: n }, (_, i) => 1 + 0.1 * Math.sin(i))) }, { name: 'ln.b', dataType: F16, dims: [n], rawData: half(Array.from({ length: n }, (_, i) => 0.05 * Math.cos(i))) });
  return onnx.ModelProto.encode(
    onnx.ModelProto.fromObject({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 17 }],
      graph: { name: 'blk', node: nodes, initializer: inits, input: [vi('x', F16, ['tokens', n])], output: [vi('y', F16, ['tokens', m])] },
    }),
  ).finish();
}

const f16Tensor = (v: Float32Array, dims: number[]) => new ort.Tensor('float16', toHalfBits(v), dims);
const f32Tensor = (v: Float32Array, dims: number[]) => new ort.Tensor('float32', v, dims);

async function runOnce(bytes: Uint8Array, feeds: Record<string, ort.Tensor>): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(bytes, { logSeverityLevel: 3 });
  try {
    const y = (await s.run(feeds)).y!;
    return fromHalfBits(y.data as Uint16Array);
  } finally {
    await s.release();
  }
}

/** Deterministic values in ±scale (an LCG: the test data is fixed by fast-check's seed). */
function values(len: number, seed: number, scale: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: len }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 2 ** 32 - 0.5) * 2 * scale;
  });
}

/** Distance between adjacent fp16 values at |v| (normal range; 2⁻²⁴ below it). */
function ulp16(v: number): number {
  const a = Math.abs(v);
  return a < 2 ** -14 ? 2 ** -24 : 2 ** (Math.floor(Math.log2(a)) - 10);
}

describe('numbers', () => {
  test('disabled (ρ = 0) = base bit for bit behind a LayerNormalization ORT runs in fp32 (the widened x keeps it so)', async () => {
    const n = 24;
    const m = 16;
    const w = toHalfBits(values(n * m, 7, 0.3));
    const base = lnLinear(n, m, w, true);
    const x = values(5 * n, 11, 2);
    const want = await runOnce(base, { x: f16Tensor(x, [5, n]) });
    for (const branchDtype of ['float32', 'activation'] as const) {
      const r = rewriteModel(base, { targets: ['blk.proj'], branchDtype });
      const t = branchDtype === 'float32' ? f32Tensor : f16Tensor;
      const got = await runOnce(r.bytes, { x: f16Tensor(x, [5, n]), 'tensorpeft.blk.proj.A': t(new Float32Array(0), [n, 0]), 'tensorpeft.blk.proj.B': t(new Float32Array(0), [0, m]) });
      expect(Array.from(got), branchDtype).toEqual(Array.from(want));
    }
  });

  test('fp32 branch vs a float64 reference of x·W + (x·A′)·B′ on random shapes: within half an fp16 ulp of y plus fp32 accumulation', async () => {
    let worstF32 = 0;
    let worstF16 = 0;
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 4, max: 48 }), fc.integer({ min: 4, max: 40 }), fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 2 ** 30 }), async (tokens, n, m, rho, seed) => {
        const wHalf = toHalfBits(values(n * m, seed, 0.5));
        const W = fromHalfBits(wHalf);
        // x is an fp16 input: the reference uses its fp16 values. A′, B′ are fed as float32 as is.
        const x = fromHalfBits(toHalfBits(values(tokens * n, seed + 1, 2)));
        const A = values(n * rho, seed + 2, 0.7);
        const B = values(rho * m, seed + 3, 0.7);
        const bytes = lnLinear(n, m, wHalf, false);
        const feeds = (t: (v: Float32Array, dims: number[]) => ort.Tensor) => ({ x: f16Tensor(x, [tokens, n]), 'tensorpeft.blk.proj.A': t(A, [n, rho]), 'tensorpeft.blk.proj.B': t(B, [rho, m]) });
        const y32 = await runOnce(rewriteModel(bytes, { targets: ['blk.proj'], branchDtype: 'float32' }).bytes, feeds(f32Tensor));
        const y16 = await runOnce(rewriteModel(bytes, { targets: ['blk.proj'], branchDtype: 'activation' }).bytes, feeds(f16Tensor));
        for (let t = 0; t < tokens; t++) {
          const xa = Array.from({ length: rho }, (_, r) => {
            let s = 0;
            for (let k = 0; k < n; k++) s += x[t * n + k]! * A[k * rho + r]!;
            return s;
          });
          for (let j = 0; j < m; j++) {
            let ref = 0;
            let mag = 0;
            for (let k = 0; k < n; k++) {
              ref += x[t * n + k]! * W[k * m + j]!;
              mag += Math.abs(x[t * n + k]! * W[k * m + j]!);
            }
            for (let r = 0; r < rho; r++) {
              ref += xa[r]! * B[r * m + j]!;
              let xaMag = 0;
              for (let k = 0; k < n; k++) xaMag += Math.abs(x[t * n + k]! * A[k * rho + r]!);
              mag += xaMag * Math.abs(B[r * m + j]!);
            }
            // Rounding y to fp16 (half an ulp; an ulp where y sits at a binade edge after the
            // fp32 sum), plus fp32 dot products of ≤ n + ρ + 1 terms: γ_k ≤ k·2⁻²⁴ of Σ|terms|.
            const bound = ulp16(ref) + (n + rho + 2) * 2 ** -24 * mag;
            const e32 = Math.abs(y32[t * m + j]! - ref);
            expect(e32, `tokens ${tokens} n ${n} m ${m} rho ${rho} seed ${seed} [${t}, ${j}]`).toBeLessThanOrEqual(bound);
            worstF32 = Math.max(worstF32, e32 / bound);
            worstF16 = Math.max(worstF16, Math.abs(y16[t * m + j]! - ref) / bound);
          }
        }
      }),
      { seed: 1212, numRuns: 24 },
    );
    console.log(JSON.stringify({ worst_error_over_bound: { float32_branch: worstF32, fp16_branch: worstF16 } }));
    // The bound discriminates: fp16 A′/B′ (rounded by 2⁻¹¹ relative) leave it on the same data.
    expect(worstF16).toBeGreaterThan(1);
  });
});
