/**
 * Browser side of browser-io.test.ts (an esbuild bundle served from 127.0.0.1): the way a
 * transformers.js app serves its model (`env.localModelPath = '/models/'`, no custom cache of its
 * own), adapters by relative URL, by Hub id (a local server stands in for the Hub through
 * `env.remoteHost`), and as dropped Files; swap, per-call override, disable.
 */
import { AutoModelForSequenceClassification, AutoTokenizer, env } from '@huggingface/transformers';
import { from_pretrained } from '../index.js';

interface Result {
  customCacheBefore: boolean;
  base: number[];
  rel: number[];
  hub: number[];
  files: number[];
  perCallBase: number[];
  disabled: number[];
  active: string[];
  missing: { name: string; code: string; message: string };
}

async function run(origin: string, texts: string[]): Promise<Result> {
  env.allowLocalModels = true;
  env.localModelPath = '/models/';
  env.allowRemoteModels = true; // Hub ids: the stand-in Hub below
  env.remoteHost = `${origin}/hub/`;
  env.useBrowserCache = false;
  const onnx = env.backends.onnx as unknown as { wasm: { wasmPaths: string; numThreads: number } };
  onnx.wasm.wasmPaths = `${origin}/ort/`;
  onnx.wasm.numThreads = 1;
  const customCacheBefore = env.useCustomCache;
  const tok = await AutoTokenizer.from_pretrained('bert');
  const plain = (await AutoModelForSequenceClassification.from_pretrained('bert', { dtype: 'fp32' })) as unknown as (x: unknown) => Promise<{ logits: { data: Float32Array } }>;
  const model = await from_pretrained(env, AutoModelForSequenceClassification, 'bert', {
    dtype: 'fp32',
    adapters: { rel: '/adapters/emotion', hub: { source: 'alice/bert-lora', revision: 'v2' } },
  });
  const call = model as unknown as (x: unknown, o?: unknown) => Promise<{ logits: { data: Float32Array } }>;
  const logits = async (f: (x: unknown, o?: unknown) => Promise<{ logits: { data: Float32Array } }>, opts?: unknown): Promise<number[]> => {
    const out: number[] = [];
    for (const t of texts) out.push(...(await (opts === undefined ? f(tok(t)) : f(tok(t), opts))).logits.data);
    return out;
  };
  const base = await logits(plain);
  const rel = await logits(call); // 'rel' is active (the first of `adapters`)
  const hub = await logits(call, { adapter: 'hub' });
  // Drag and drop: Files named like the adapter's files.
  const fetched = await Promise.all(['adapter_config.json', 'adapter_model.safetensors'].map(async (n) => new File([await (await fetch(`/adapters/emotion/${n}`)).arrayBuffer()], n)));
  await model.load_adapter(fetched, { adapter_name: 'files' });
  const files = await logits(call, { adapter: 'files' });
  const perCallBase = await logits(call, { adapter: null });
  model.disable_adapters();
  const disabled = await logits(call);
  const active = model.active_adapters();
  const missing = await model.load_adapter('./adapters/missing/', { adapter_name: 'missing' }).then(
    () => ({ name: 'none', code: 'none', message: '' }),
    (e: { name: string; code: string; message: string }) => ({ name: e.name, code: e.code, message: e.message }),
  );
  return { customCacheBefore, base, rel, hub, files, perCallBase, disabled, active, missing };
}

Object.assign(globalThis, { tensorpeftBrowserIo: { run } });
