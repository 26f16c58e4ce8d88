/**
 * Sibling fusion, isolated (issue 12): the branch products of one group of linears reading the same
 * x at decode (M = 1), as three small ONNX graphs on onnxruntime-node's CPU EP — per module
 * (x·A′ᵢ)·B′ᵢ (unfused), x·[A′ᵢ] then blockdiag(B′ᵢ) then Split (what rewrite-siblings.ts writes),
 * and x·[A′ᵢ] then a Split of h by rank and one product per module ("slices"), and an empty run
 * (one Identity: the run's own cost, subtracted) — timed per run,
 * alternating the variants, median of many runs. The deltas are graph outputs (the per-module Adds
 * are the same in every variant and left out). By hand, not CI:
 *
 *   npx tsx packages/transformers-plugin/scripts/micro-siblings.mts [rank=16] [runs=3000]
 */
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { loadavg } from 'node:os';

const { onnx } = onnxProto;
const F = onnx.TensorProto.DataType.FLOAT;
const I64 = onnx.TensorProto.DataType.INT64;
const INT = onnx.AttributeProto.AttributeType.INT;
const rank = Number(process.argv[2] ?? 16);
const runs = Number(process.argv[3] ?? 3000);

const vi = (name: string, dims: number[]) => ({ name, type: { tensorType: { elemType: F, shape: { dim: dims.map((d) => ({ dimValue: d })) } } } });
const rand = (n: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898) * 0.1);
const init = (name: string, dims: number[]) => ({ name, dataType: F, dims, floatData: Array.from(rand(dims.reduce((a, b) => a * b, 1))) });

type Variant = 'none' | 'unfused' | 'blockdiag' | 'slices';

function graph(n: number, ms: number[], v: Variant): Uint8Array {
  const k = ms.length;
  const R = rank * k;
  const M = ms.reduce((a, b) => a + b, 0);
  const nodes: onnxProto.onnx.INodeProto[] = [];
  const inits: onnxProto.onnx.ITensorProto[] = [];
  const outs = v === 'none' ? [vi('d0', [1, 1, n])] : ms.map((m, i) => vi(`d${i}`, [1, 1, m]));
  if (v === 'none') {
    // The run's own cost (binding x, one trivial node, one output): subtracted to get the products'.
    nodes.push({ opType: 'Identity', name: 'i', input: ['x'], output: ['d0'] });
  } else if (v === 'unfused') {
    ms.forEach((m, i) => {
      inits.push(init(`A${i}`, [n, rank]), init(`B${i}`, [rank, m]));
      nodes.push({ opType: 'MatMul', name: `a${i}`, input: ['x', `A${i}`], output: [`h${i}`] }, { opType: 'MatMul', name: `b${i}`, input: [`h${i}`, `B${i}`], output: [`d${i}`] });
    });
  } else {
    inits.push(init('A', [n, R]));
    nodes.push({ opType: 'MatMul', name: 'a', input: ['x', 'A'], output: ['h'] });
    if (v === 'blockdiag') {
      inits.push(init('B', [R, M]), { name: 'sizes', dataType: I64, dims: [k], int64Data: ms });
      nodes.push({ opType: 'MatMul', name: 'b', input: ['h', 'B'], output: ['d'] }, { opType: 'Split', name: 's', input: ['d', 'sizes'], output: ms.map((_, i) => `d${i}`), attribute: [{ name: 'axis', type: INT, i: -1 }] });
    } else {
      inits.push({ name: 'ranks', dataType: I64, dims: [k], int64Data: ms.map(() => rank) });
      nodes.push({ opType: 'Split', name: 's', input: ['h', 'ranks'], output: ms.map((_, i) => `h${i}`), attribute: [{ name: 'axis', type: INT, i: -1 }] });
      ms.forEach((m, i) => {
        inits.push(init(`B${i}`, [rank, m]));
        nodes.push({ opType: 'MatMul', name: `b${i}`, input: [`h${i}`, `B${i}`], output: [`d${i}`] });
      });
    }
  }
  return onnx.ModelProto.encode(onnx.ModelProto.fromObject({ irVersion: 8, opsetImport: [{ domain: '', version: 17 }], graph: { name: 'g', node: nodes, initializer: inits, input: [vi('x', [1, 1, n])], output: outs } })).finish();
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const groups: Array<[string, number, number[]]> = [
  ['q|k|v (SmolLM-135M: 576 → 576, 192, 192)', 576, [576, 192, 192]],
  ['gate|up (576 → 1536, 1536)', 576, [1536, 1536]],
];
console.log(`rank ${rank} per module, ${runs} runs per variant (alternating), median µs per run; load ${loadavg()[0]!.toFixed(2)}`);
for (const [label, n, ms] of groups) {
  const variants: Variant[] = ['none', 'unfused', 'blockdiag', 'slices'];
  const sessions = await Promise.all(variants.map((v) => ort.InferenceSession.create(graph(n, ms, v))));
  const x = new ort.Tensor('float32', rand(n), [1, 1, n]);
  const t: number[][] = variants.map(() => []);
  for (let r = 0; r < runs; r++)
    for (let i = 0; i < variants.length; i++) {
      const s = sessions[(i + r) % variants.length]!;
      const t0 = process.hrtime.bigint();
      await s.run({ x });
      t[(i + r) % variants.length]!.push(Number(process.hrtime.bigint() - t0) / 1000);
    }
  const med = t.map(median);
  console.log(`${label}: ${variants.map((v, i) => `${v} ${med[i]!.toFixed(1)} µs`).join(', ')} (over the empty run: unfused ${(med[1]! - med[0]!).toFixed(1)}, blockdiag ${(med[2]! - med[0]!).toFixed(1)}, slices ${(med[3]! - med[0]!).toFixed(1)} µs)`);
  for (const s of sessions) await s.release();
}
console.log(`load ${loadavg()[0]!.toFixed(2)}`);
