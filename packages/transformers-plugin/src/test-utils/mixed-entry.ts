/**
 * One mixed-adapter batch against the same rows run alone, on whatever ONNX Runtime transformers.js
 * runs on: the browser side of mixed-browser.test.ts (an esbuild bundle served from 127.0.0.1:
 * ORT-web wasm and WebGPU) and, imported after ORT-web is installed as transformers.js' runtime,
 * mixed-web.test.ts (ORT-web wasm in Node).
 */
import { AutoModelForSequenceClassification, Tensor, env } from '@huggingface/transformers';
import { createAdapter, type ModelShape } from '@tensorpeft/core';
import { from_pretrained } from '../index.js';

export interface MixedRunOptions {
  /** Where the model folder `bert` is: a local folder (Node) or an origin serving `/models/bert/`. */
  local?: string;
  origin?: string;
  shape: ModelShape;
  vocab: number;
  device: 'wasm' | 'webgpu' | 'auto';
}

export interface MixedRunResult {
  names: Array<string | null>;
  labels: number;
  /** Logits of the mixed batch, of the same batch with adapters disabled, and of each adapter row in the batch run with only its adapter (base rows: empty). */
  mixed: number[];
  base: number[];
  alone: number[][];
  /** The typed error of a call whose adapter_names has the wrong length. */
  error: { name: string; code: string };
}

type Call = (x: Record<string, unknown>, o?: Record<string, unknown>) => Promise<{ logits: { data: Float32Array; dims: number[] } }>;

export async function mixedRun(o: MixedRunOptions): Promise<MixedRunResult> {
  const onnx = env.backends.onnx as unknown as { wasm: { wasmPaths: string; numThreads: number } };
  if (o.origin !== undefined) {
    env.allowLocalModels = false;
    env.allowRemoteModels = true;
    env.useBrowserCache = false;
    env.remoteHost = `${o.origin}/models/`;
    env.remotePathTemplate = '{model}/';
    onnx.wasm.wasmPaths = `${o.origin}/ort/`;
    onnx.wasm.numThreads = 1;
  } else {
    env.allowRemoteModels = false;
    env.localModelPath = `${o.local}/`;
  }
  const model = await from_pretrained(env as never, AutoModelForSequenceClassification as never, 'bert', {
    dtype: 'fp32',
    device: o.device,
    mixed_batches: true,
    ...(o.device === 'webgpu' ? { webgpu: true } : {}),
  } as never);
  const m = model as unknown as typeof model & Call;
  // Three methods, three ranks; scaled so each moves the logits well above the tolerance.
  const methods: Array<[string, string, Record<string, unknown>]> = [
    ['lora', 'LORA', { r: 2 }],
    ['trac', 'TRAC', {}],
    ['tenslora', 'TENSLORA', {}],
  ];
  for (const [name, method, config] of methods) {
    const a = createAdapter({ method, shape: o.shape, nonzero: true, seed: name.length, config });
    for (const t of a.params.values()) for (let j = 0; j < t.data.length; j++) t.data[j] = t.data[j]! * 4;
    await model.load_adapter(a, { adapter_name: name });
  }
  const names: Array<string | null> = ['lora', null, 'tenslora', 'trac'];
  const len = 6;
  const ids = new BigInt64Array(names.length * len);
  for (let i = 0; i < ids.length; i++) ids[i] = BigInt(1 + ((i * 37 + 11) % (o.vocab - 1)));
  const batch = (rows: number[]): Record<string, Tensor> => {
    const n = rows.length;
    const sel = new BigInt64Array(n * len);
    rows.forEach((r, k) => sel.set(ids.subarray(r * len, (r + 1) * len), k * len));
    return {
      input_ids: new Tensor('int64', sel, [n, len]),
      attention_mask: new Tensor('int64', new BigInt64Array(n * len).fill(1n), [n, len]),
      token_type_ids: new Tensor('int64', new BigInt64Array(n * len), [n, len]),
    };
  };
  const all = names.map((_, i) => i);
  const mixedOut = (await m(batch(all), { adapter_names: names })).logits;
  const base = Array.from((await m(batch(all), { adapter: null })).logits.data);
  const alone: number[][] = [];
  // Base rows are compared with the base batch (bit for bit); adapter rows with the same batch run
  // with that adapter alone (rows are independent; one input shape keeps WebGPU's shader cache warm).
  const L = mixedOut.dims[1]!;
  const byAdapter = new Map<string, number[]>();
  for (const n of new Set(names)) if (n !== null) byAdapter.set(n, Array.from((await m(batch(all), { adapter: n })).logits.data));
  for (const [i, n] of names.entries()) alone.push(n === null ? [] : byAdapter.get(n)!.slice(i * L, (i + 1) * L));
  const error = await m(batch(all), { adapter_names: names.slice(1) }).then(
    () => ({ name: 'none', code: 'none' }),
    (e: { name: string; code: string }) => ({ name: e.name, code: e.code }),
  );
  return { names, labels: mixedOut.dims[1]!, mixed: Array.from(mixedOut.data), base, alone, error };
}

Object.assign(globalThis, { tensorpeftMixed: { run: mixedRun } });
