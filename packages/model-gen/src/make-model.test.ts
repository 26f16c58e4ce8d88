import { describe, expect, it } from 'vitest';
import { ConfigError, shapeFromHfConfig } from '@tensorpeft/core';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { ARCH_TASKS, ARCHS, decodeModel, defaultFixturesDir, makeModel, makeTokenizer, type Arch, type Task } from './index.js';

type Onnx = ReturnType<typeof decodeModel>;
type OnnxNode = NonNullable<NonNullable<Onnx['graph']>['node']>[number];
const td = new TextDecoder();

function nodesByName(m: Onnx): Map<string, OnnxNode> {
  return new Map(m.graph!.node!.map((n) => [n.name!, n]));
}
function initDims(m: Onnx): Map<string, number[]> {
  return new Map(m.graph!.initializer!.map((t) => [t.name!, (t.dims ?? []).map(Number)]));
}
function load(arch: Arch, task: Task, opts: Record<string, unknown> = {}): { m: ReturnType<typeof makeModel>; fp: Onnx; q8: Onnx } {
  const m = makeModel({ arch, task, ...opts });
  return { m, fp: decodeModel(m.files.get('onnx/model.onnx')!), q8: decodeModel(m.files.get('onnx/model_quantized.onnx')!) };
}
const json = (b: Uint8Array | undefined): Record<string, unknown> => JSON.parse(td.decode(b)) as Record<string, unknown>;

const combos = ARCHS.flatMap((arch) => ARCH_TASKS[arch].map((task) => [arch, task] as const));

describe('makeModel', () => {
  // Generation speed lives in benchmarks, not in timed assertions (the machines are shared).
  it('generates every tiny architecture × task with the files transformers.js loads', () => {
    for (const [arch, task] of combos) {
      const m = makeModel({ arch, task });
      expect([...m.files.keys()]).toEqual(
        expect.arrayContaining(['config.json', 'onnx/model.onnx', 'onnx/model_quantized.onnx', ...(arch === 'vit' ? ['preprocessor_config.json'] : ['tokenizer.json', 'tokenizer_config.json'])]),
      );
    }
  });

  it('is deterministic: the same seed gives identical bytes, another seed other weights', () => {
    for (const arch of ARCHS) {
      const a = makeModel({ arch, seed: 7 });
      const b = makeModel({ arch, seed: 7 });
      for (const [k, v] of a.files) expect(Buffer.from(b.files.get(k)!).equals(Buffer.from(v)), `${arch} ${k}`).toBe(true);
      const c = makeModel({ arch, seed: 8 });
      expect(Buffer.from(c.files.get('onnx/model.onnx')!).equals(Buffer.from(a.files.get('onnx/model.onnx')!))).toBe(false);
      expect(c.files.get('onnx/model.onnx')!.length).toBe(a.files.get('onnx/model.onnx')!.length);
    }
  });

  it('gives a bare model the same base weights as its task model (PRNG keyed by the task-model name)', () => {
    const bare = makeModel({ arch: 'bert', task: 'feature-extraction', seed: 3 });
    const cls = makeModel({ arch: 'bert', task: 'sequence-classification', seed: 3 });
    const a = bare.weights.get('encoder.layer.1.attention.self.value.weight')!.data as Float32Array;
    const b = cls.weights.get('bert.encoder.layer.1.attention.self.value.weight')!.data as Float32Array;
    expect(Array.from(a)).toEqual(Array.from(b));
  });

  it('writes config.json that core reads back as the same ModelShape, with PEFT module paths', () => {
    for (const [arch, task] of combos) {
      const m = makeModel({ arch, task, numLabels: 3 });
      const config = json(m.files.get('config.json'));
      expect(config['model_type']).toBe(arch);
      expect(shapeFromHfConfig(config).modules).toEqual(m.shape.modules);
      if (task === 'sequence-classification') {
        expect(config['num_labels']).toBe(3);
        expect(config['id2label']).toEqual({ '0': 'LABEL_0', '1': 'LABEL_1', '2': 'LABEL_2' });
        expect(config['label2id']).toEqual({ LABEL_0: 0, LABEL_1: 1, LABEL_2: 2 });
      }
      // Every targetable module of the shape is one linear of the graph, in model order.
      const targets = m.linears.filter((l) => l.kind === 'target');
      expect(targets.map((l) => [l.peftPath, l.in, l.out])).toEqual(m.shape.modules.map((s) => [s.path, s.in, s.out]));
    }
    expect(makeModel({ arch: 'distilbert' }).shape.modules[0]!.path).toBe('distilbert.transformer.layer.0.attention.q_lin');
  });

  it('names nodes by module path and stores MatMul weights transposed under onnx::MatMul_N, bias Add after', () => {
    const cases: Array<[Arch, Task, string, string]> = [
      ['bert', 'sequence-classification', '/bert/encoder/layer.0/attention/self/query', 'bert.encoder.layer.0.attention.self.query.bias'],
      ['bert', 'feature-extraction', '/encoder/layer.0/attention/self/query', 'encoder.layer.0.attention.self.query.bias'],
      ['roberta', 'sequence-classification', '/roberta/encoder/layer.1/output/dense', 'roberta.encoder.layer.1.output.dense.bias'],
      ['distilbert', 'sequence-classification', '/distilbert/transformer/layer.0/attention/q_lin', 'distilbert.transformer.layer.0.attention.q_lin.bias'],
      ['distilbert', 'feature-extraction', '/transformer/layer.1/ffn/lin1', 'transformer.layer.1.ffn.lin1.bias'],
      ['vit', 'sequence-classification', '/vit/encoder/layer.0/attention/attention/query', 'vit.encoder.layer.0.attention.attention.query.bias'],
    ];
    for (const [arch, task, scope, bias] of cases) {
      const { m, fp } = load(arch, task);
      const nodes = nodesByName(fp);
      const dims = initDims(fp);
      const mm = nodes.get(`${scope}/MatMul`);
      expect(mm, `${arch} ${scope}`).toBeDefined();
      expect(mm!.input![1]).toMatch(/^onnx::MatMul_\d+$/);
      const lin = m.linears.find((l) => l.node === `${scope}/MatMul`)!;
      expect(dims.get(mm!.input![1]!)).toEqual([lin.in, lin.out]);
      const add = nodes.get(`${scope}/Add`)!;
      expect(add.input).toEqual([bias, mm!.output![0]]);
    }
    // LLaMA: no biases, GQA k/v of num_key_value_heads · head_dim.
    const { fp } = load('llama', 'causal-lm');
    const nodes = nodesByName(fp);
    const dims = initDims(fp);
    expect(dims.get(nodes.get('/model/layers.0/self_attn/k_proj/MatMul')!.input![1]!)).toEqual([64, 32]);
    expect(dims.get(nodes.get('/model/layers.1/mlp/down_proj/MatMul')!.input![1]!)).toEqual([128, 64]);
    expect(nodes.has('/model/layers.0/self_attn/q_proj/Add')).toBe(false);
    expect(dims.get(nodes.get('/lm_head/MatMul')!.input![1]!)![0]).toBe(64);
  });

  it('exports classifier heads as Gemm (transB=1) on their own parameter names', () => {
    const heads: Array<[Arch, string[]]> = [
      ['bert', ['/bert/pooler/dense/Gemm', '/classifier/Gemm']],
      ['roberta', ['/classifier/dense/Gemm', '/classifier/out_proj/Gemm']],
      ['distilbert', ['/pre_classifier/Gemm', '/classifier/Gemm']],
      ['vit', ['/classifier/Gemm']],
    ];
    for (const [arch, names] of heads) {
      const { m, fp, q8 } = load(arch, 'sequence-classification', { numLabels: 6 });
      const nodes = nodesByName(fp);
      const dims = initDims(fp);
      for (const name of names) {
        const g = nodes.get(name)!;
        expect(g.opType, name).toBe('Gemm');
        expect(Number(g.attribute!.find((a) => a.name === 'transB')!.i)).toBe(1);
        const path = name.slice(1, -'/Gemm'.length).replace(/\//g, '.');
        expect(g.input!.slice(1)).toEqual([`${path}.weight`, `${path}.bias`]);
        expect(dims.get(`${path}.weight`)![1]).toBe(32);
        // Heads stay fp32 in the q8 model (onnxruntime's dynamic quantization has no Gemm kernel).
        expect(nodesByName(q8).get(name)!.opType).toBe('Gemm');
      }
      expect(dims.get('classifier.weight') ?? dims.get('classifier.out_proj.weight')).toEqual([6, 32]);
      expect(m.outputs.map((o) => o.name)).toEqual(['logits']);
    }
  });

  it('exports GPT-2 Conv1D as Gemm on [in, out] weights with the fused c_attn, or as MatMul on request', () => {
    const { m, fp } = load('gpt2', 'causal-lm');
    const nodes = nodesByName(fp);
    const dims = initDims(fp);
    const g = nodes.get('/transformer/h.0/attn/c_attn/Gemm')!;
    expect(g.input!.slice(1)).toEqual(['transformer.h.0.attn.c_attn.weight', 'transformer.h.0.attn.c_attn.bias']);
    expect(dims.get('transformer.h.0.attn.c_attn.weight')).toEqual([32, 96]);
    expect(dims.get('transformer.h.1.mlp.c_proj.weight')).toEqual([128, 32]);
    expect(nodes.get('/transformer/h.0/attn/Split')!.input![0]).toBe(nodes.get('/transformer/h.0/attn/c_attn/Reshape_1')!.output![0]);
    expect(m.linears.filter((l) => l.kind === 'target').every((l) => l.op === 'Gemm' && l.weightLayout === 'in_out')).toBe(true);
    expect(m.inputs.map((i) => i.name)).toEqual(['input_ids', 'attention_mask', 'position_ids', 'past_key_values.0.key', 'past_key_values.0.value', 'past_key_values.1.key', 'past_key_values.1.value']);
    expect(m.outputs.map((i) => i.name)).toEqual(['logits', 'present.0.key', 'present.0.value', 'present.1.key', 'present.1.value']);

    const mm = load('gpt2', 'causal-lm', { gpt2Conv1d: 'MatMul' });
    const n2 = nodesByName(mm.fp);
    expect(n2.get('/transformer/h.0/attn/c_attn/MatMul')!.input![1]).toBe('transformer.h.0.attn.c_attn.weight');
    expect(n2.get('/transformer/h.0/attn/c_attn/Add')!.input![0]).toBe('transformer.h.0.attn.c_attn.bias');
    expect(nodesByName(mm.q8).get('/transformer/h.0/attn/c_attn/MatMul_quant')!.opType).toBe('MatMulInteger');
  });

  it('quantizes every constant-weight MatMul to DynamicQuantizeLinear + MatMulInteger (q8), keeping tensor names', () => {
    for (const [arch, task] of combos) {
      const { m, q8 } = load(arch, task);
      const nodes = nodesByName(q8);
      const init = new Map(q8.graph!.initializer!.map((t) => [t.name!, t]));
      for (const n of q8.graph!.node!) if (n.opType === 'MatMul') expect(init.has(n.input![1]!), `${arch} ${n.name}`).toBe(false);
      for (const l of m.linears.filter((x) => x.op === 'MatMul')) {
        const q = nodes.get(`${l.node}_quant`)!;
        expect(q.opType).toBe('MatMulInteger');
        expect(q.input![1]).toBe(`${l.weight}_quantized`);
        expect(init.get(`${l.weight}_quantized`)!.dataType).toBe(3); // INT8
        expect(nodes.get(`${l.input}_QuantizeLinear`)!.opType).toBe('DynamicQuantizeLinear');
        // The MatMul's output tensor keeps its name: the bias Add is unchanged.
        expect(q8.graph!.node!.some((n) => n.opType === 'Mul' && n.output![0] === l.output)).toBe(true);
      }
      // GPT2Model has no MatMul with a constant weight (Conv1D → Gemm, no lm_head): only its embeddings are quantized.
      expect(q8.graph!.node!.some((n) => n.opType === 'MatMulInteger')).toBe(!(arch === 'gpt2' && task === 'feature-extraction'));
      expect(q8.graph!.node!.some((n) => n.opType === 'DequantizeLinear' && n.name!.includes('Gather'))).toBe(arch !== 'vit');
      expect(m.files.get('onnx/model_quantized.onnx')!.length).toBeLessThan(m.files.get('onnx/model.onnx')!.length);
    }
  });

  it('uses opset 17 with LayerNormalization and typed, symbolic graph inputs', () => {
    const { fp } = load('bert', 'sequence-classification');
    expect(Number(fp.opsetImport![0]!.version)).toBe(17);
    expect(fp.graph!.node!.filter((n) => n.opType === 'LayerNormalization').length).toBe(1 + 2 * 2);
    expect(fp.graph!.node!.some((n) => n.opType === 'Erf')).toBe(true);
    const ids = fp.graph!.input!.find((i) => i.name === 'input_ids')!;
    expect(ids.type!.tensorType!.shape!.dim!.map((d) => d.dimParam)).toEqual(['batch_size', 'sequence_length']);
    expect(fp.graph!.input!.map((i) => i.name)).toEqual(['input_ids', 'attention_mask', 'token_type_ids']);
    expect(load('distilbert', 'feature-extraction').fp.graph!.input!.map((i) => i.name)).toEqual(['input_ids', 'attention_mask']);
    expect(load('vit', 'feature-extraction').fp.graph!.input!.map((i) => i.name)).toEqual(['pixel_values']);
  });

  it('refuses unknown architectures, tasks a model class does not exist for, and bad labels', () => {
    expect(() => makeModel({ arch: 't5' })).toThrow(ConfigError);
    expect(() => makeModel({ arch: 'gpt2', task: 'sequence-classification' })).toThrow(/task not available for gpt2/);
    expect(() => makeModel({ arch: 'bert', task: 'causal-lm' })).toThrow(ConfigError);
    expect(() => makeModel({ arch: 'bert', numLabels: 0 })).toThrow(ConfigError);
    expect(() => makeModel({ arch: 'bert', size: 'huge' })).toThrow(/unknown size/);
  });

  it('uses the real DistilBERT / GPT-2 tokenizers at base size, generated ones otherwise', () => {
    const fixtures = defaultFixturesDir();
    // The real tokenizers ship in the repo (fixtures/peft-real): base sizes must use them.
    expect(existsSync(path.join(fixtures, 'gpt2-lora-tigrinya', 'tokenizer.json'))).toBe(true);
    expect(makeTokenizer('gpt2', 'base')!.source).toBe('gpt2-fixture');
    expect(makeTokenizer('distilbert', 'base')!.source).toBe('distilbert-fixture');
    expect(makeTokenizer('bert', 'base', '/nonexistent')!.source).toBe('generated');
    expect(makeTokenizer('gpt2', 'tiny')!.source).toBe('generated');
    expect(makeTokenizer('vit', 'tiny')).toBeUndefined();
  });

  it('generates a base-size DistilBERT classifier with the shapes of the real PEFT fixture adapter', () => {
    const m = makeModel({ arch: 'distilbert', size: 'base', numLabels: 6, quantized: false });
    const q = m.linears.find((l) => l.peftPath === 'distilbert.transformer.layer.5.attention.v_lin')!;
    expect([q.in, q.out]).toEqual([768, 768]);
    expect(m.weights.get('classifier.weight')!.dims).toEqual([6, 768]);
    expect(m.weights.get('pre_classifier.weight')!.dims).toEqual([768, 768]);
    expect(m.shape.modules.length).toBe(6 * 6);
    expect(json(m.files.get('config.json'))['vocab_size']).toBe(30522);
  });
});
