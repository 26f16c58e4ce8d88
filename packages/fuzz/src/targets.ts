/**
 * One fuzz case per call. Adapter cases mutate the config, the safetensors file, or both, and
 * load them with core's `adapterFromBytes`; an accepted adapter must materialize to finite
 * (A′, B′, s) and survive a save/load round trip unchanged. Model cases mutate ONNX bytes (as
 * bytes, or as a decoded graph) and run the plugin's `rewriteModel`; an accepted rewrite must give
 * decodable bytes with branches only on the requested targets.
 */
import { JsBackend, adapterFromBytes, adapterToFiles, materializeAdapter, stableStringify, type Adapter } from '@tensorpeft/core';
import { rewriteModel } from '@tensorpeft/transformers-plugin';
import onnxProto from 'onnx-proto';
import { errorOutcome, type Outcome } from './classify.js';
import { mutateBytes, mutateJson, mutateSafetensors } from './mutate.js';
import type { Rng } from './rng.js';
import type { AdapterSeed, ModelSeed } from './seeds.js';

const { onnx } = onnxProto;
const backend = new JsBackend();

export interface AdapterCase {
  seed: string;
  config: string | Uint8Array;
  safetensors: Uint8Array;
  withShape: boolean;
  what: 'config' | 'safetensors' | 'both';
}

/** Build the mutated inputs of one adapter case. */
export function adapterCase(rng: Rng, seeds: readonly AdapterSeed[], what?: AdapterCase['what']): AdapterCase {
  // The real adapters are 3 MB each (a case costs ~50× a generated one): 1 case in 25 goes to them.
  const real = seeds.filter((x) => x.shape === undefined);
  const generated = seeds.filter((x) => x.shape !== undefined);
  const s = real.length && (rng.chance(0.04) || !generated.length) ? rng.pick(real) : rng.pick(generated);
  const w = what ?? rng.pick(['config', 'safetensors', 'safetensors', 'both'] as const);
  let config: string | Uint8Array = s.config;
  let st = s.safetensors;
  if (w !== 'safetensors') {
    config = rng.chance(0.8)
      ? mutateJson(rng, JSON.parse(s.config), ['r', 'lora_alpha', 'target_modules', 'layers_to_transform', 'modules_to_save', 'scaling', 'ranks', 'tensor_shape', 'peft_type', 'construction'])
      : mutateBytes(rng, new TextEncoder().encode(s.config));
  }
  if (w !== 'config') st = mutateSafetensors(rng, st);
  return { seed: s.name, config, safetensors: st, withShape: s.shape !== undefined && rng.chance(0.5), what: w };
}

function allFinite(x: Float32Array): boolean {
  for (let i = 0; i < x.length; i++) if (!Number.isFinite(x[i]!)) return false;
  return true;
}

function sameTensors(a: Adapter, b: Adapter): string | undefined {
  for (const [k, t] of a.params) {
    const u = b.params.get(k);
    if (!u || u.data.length !== t.data.length) return `round trip lost tensor ${k}`;
    // fp16/bf16 files re-save in their dtype: values are the decoded ones, so equal bit for bit.
    for (let i = 0; i < t.data.length; i++) if (!Object.is(t.data[i], u.data[i])) return `round trip changed ${k}[${i}]`;
  }
  if (stableStringify(a.config) !== stableStringify(b.config)) return 'round trip changed the config';
  return undefined;
}

/** Run one adapter case and classify it. */
export async function runAdapterCase(c: AdapterCase, seeds: readonly AdapterSeed[]): Promise<Outcome> {
  let a: Adapter;
  try {
    const shape = c.withShape ? seeds.find((s) => s.name === c.seed)?.shape : undefined;
    a = adapterFromBytes({ config: c.config, safetensors: c.safetensors, source: `fuzz/${c.seed}`, ...(shape ? { shape } : {}) });
  } catch (e) {
    return errorOutcome(e);
  }
  try {
    const ups = await materializeAdapter(a, backend);
    for (const u of ups) {
      if (!Number.isFinite(u.s) || !allFinite(u.A) || !allFinite(u.B)) return { kind: 'nonfinite', message: `accepted adapter materializes non-finite values in ${u.path} (s = ${u.s})` };
    }
    const f = adapterToFiles(a);
    const back = adapterFromBytes({ config: f.configJson, safetensors: f.safetensors, shape: a.shape });
    const diff = sameTensors(a, back);
    if (diff) return { kind: 'wrong', message: diff };
    return { kind: 'accepted' };
  } catch (e) {
    // A typed refusal after acceptance (e.g. materialize refusing) is still typed; an untyped one is a finding.
    return errorOutcome(e);
  }
}

type ModelProto = onnxProto.onnx.IModelProto;

export const GRAPH_MUTATIONS = ['rewire', 'drop-node', 'dims', 'dtype', 'truncate-data', 'op-type', 'fan-out', 'external', 'attribute'] as const;
export type GraphMutation = (typeof GRAPH_MUTATIONS)[number];

/** Structural mutations of a decoded graph (what byte flips rarely reach). */
function mutateGraph(rng: Rng, model: ModelProto, kinds: readonly GraphMutation[]): void {
  const g = model.graph!;
  const nodes = g.node ?? [];
  const inits = g.initializer ?? [];
  const ops = 1 + rng.int(3);
  for (let k = 0; k < ops; k++) {
    switch (GRAPH_MUTATIONS.indexOf(rng.pick(kinds))) {
      case 0: {
        const nd = rng.pick(nodes);
        if (nd.input?.length) nd.input[rng.int(nd.input.length)] = rng.pick(['', 'missing', ...(nodes.flatMap((n) => n.output ?? []).slice(0, 50))]);
        break;
      }
      case 1:
        nodes.splice(rng.int(nodes.length), 1);
        break;
      case 2: {
        const t = rng.pick(inits);
        if (t) t.dims = rng.pick([[], [0], [1], [-1], [2 ** 31], [...(t.dims ?? []), 1], (t.dims ?? []).slice(1)]);
        break;
      }
      case 3: {
        const t = rng.pick(inits);
        if (t) t.dataType = rng.pick([0, 1, 2, 3, 7, 10, 11, 16, 99]);
        break;
      }
      case 4: {
        const t = rng.pick(inits);
        if (t) {
          t.rawData = (t.rawData ?? new Uint8Array()).subarray(0, rng.int(((t.rawData as Uint8Array | undefined)?.length ?? 0) + 1));
          t.floatData = [];
        }
        break;
      }
      case 5: {
        const nd = rng.pick(nodes);
        nd.opType = rng.pick(['MatMul', 'Gemm', 'Add', 'MatMulInteger', 'Identity', 'Transpose', 'If', 'Constant', 'X']);
        break;
      }
      case 6: {
        // Many consumers of one tensor, a duplicated node (two producers of one name).
        const nd = rng.pick(nodes);
        if (rng.chance(0.5)) nodes.push(onnx.NodeProto.create({ ...nd, name: `${nd.name}_dup` }));
        else for (let i = 0; i < 1000; i++) nodes.push(onnx.NodeProto.create({ opType: 'Identity', input: [nd.output?.[0] ?? 'x'], output: [`fan_${i}`] }));
        break;
      }
      case 7: {
        // External data where it does not belong.
        const t = rng.pick(inits);
        if (t) {
          t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
          t.externalData = [onnx.StringStringEntryProto.create({ key: 'location', value: rng.pick(['../x', 'file:///etc/passwd', 'model.onnx_data', 'a?b', '/abs']) }), onnx.StringStringEntryProto.create({ key: 'length', value: rng.pick(['-1', '8', '99999999999999999', 'x']) })];
        }
        break;
      }
      default: {
        const nd = rng.pick(nodes);
        const a = nd.attribute?.[0];
        if (a) {
          a.i = rng.pick([0, 1, -1, 2 ** 40]);
          a.ints = [rng.int(5) - 1];
        } else nd.attribute = [onnx.AttributeProto.create({ name: 'transA', type: onnx.AttributeProto.AttributeType.INT, i: 1 })];
      }
    }
  }
}

export interface ModelCase {
  seed: string;
  bytes: Uint8Array;
  targets: string[];
  mode: 'branch' | 'merge';
  how: 'bytes' | 'graph';
}

export function modelCase(rng: Rng, seeds: readonly ModelSeed[], how?: ModelCase['how'], kinds: readonly GraphMutation[] = GRAPH_MUTATIONS): ModelCase {
  const s = rng.pick(seeds);
  const h = how ?? (rng.chance(0.5) ? 'graph' : 'bytes');
  let bytes: Uint8Array;
  if (h === 'bytes') bytes = mutateBytes(rng, s.bytes);
  else {
    const model = onnx.ModelProto.decode(s.bytes);
    mutateGraph(rng, model, kinds);
    bytes = onnx.ModelProto.encode(onnx.ModelProto.fromObject(onnx.ModelProto.toObject(model))).finish();
  }
  const targets = rng.chance(0.8) ? s.targets : s.targets.slice(0, 1 + rng.int(s.targets.length));
  return { seed: s.name, bytes, targets, mode: rng.chance(0.2) ? 'merge' : 'branch', how: h };
}

export function runModelCase(c: ModelCase): Outcome {
  let r: ReturnType<typeof rewriteModel>;
  try {
    r = rewriteModel(c.bytes, { targets: c.targets, mode: c.mode });
  } catch (e) {
    return errorOutcome(e);
  }
  try {
    onnx.ModelProto.decode(r.bytes);
  } catch (e) {
    return { kind: 'wrong', message: `rewritten bytes do not decode: ${(e as Error).message}` };
  }
  const extra = r.branches.filter((b) => !c.targets.includes(b.path));
  if (extra.length) return { kind: 'wrong', message: `branch on an untargeted module ${extra[0]!.path}` };
  return { kind: 'accepted' };
}
