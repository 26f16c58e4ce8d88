import { expect, test } from 'vitest';
import { splitProfile } from './bench-dtype.js';

// The profile split of the dtype bench (runDtypeBench itself runs in bench.test.ts's serving rows):
// onnxruntime's trace events, classified by node name.
test('splitProfile: branch nodes, Casts onnxruntime inserted on branch tensors and elsewhere, the rest', () => {
  const ev = (name: string, dur: number, cat = 'Node') => ({ cat, name: `${name}_kernel_time`, dur });
  const split = splitProfile([
    ev('/tensorpeft/model.layers.0.self_attn.q_proj/MatMul_A', 5),
    ev('/tensorpeft/model.layers.0.self_attn.q_proj/Add', 2),
    ev('InsertedPrecisionFreeCast_/tensorpeft/model.layers.0.self_attn.q_proj/xA', 7),
    ev('InsertedPrecisionFreeCast_tensorpeft.model.layers.0.self_attn.q_proj.A', 11),
    ev('InsertedPrecisionFreeCast_/model/layers.0/self_attn/Reshape_output_0', 13),
    ev('/model/layers.0/self_attn/q_proj/MatMul', 17),
    ev('/model/Cast', 19),
    { cat: 'Session', name: 'model_run', dur: 1000 },
    { cat: 'Node', name: '/model/layers.0/mlp/up_proj/MatMul_fence_before', dur: 1000 },
  ]);
  expect(split).toEqual({ branch: 7, branchCasts: 18, otherCasts: 13, rest: 36 });
});
