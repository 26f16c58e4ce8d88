// Generates what the playground serves offline into public/generated/ (gitignored):
//   models/tiny-distilbert/…           a tiny DistilBERT sequence classifier (@tensorpeft/model-gen), fp32 + q8
//                                      + every other dtype model-gen emits (fp16, int8, uint8, q4, q4f16, bnb4)
//   models/distilbert-base-emotion/…   a base-size DistilBERT (distilbert-base-uncased shapes, 6 labels,
//                                      generated weights) for the real PEFT LoRA below, fp32 + q8
//   adapters/<method>/…                one nonzero adapter per method on the tiny model
//   adapters/distilbert-lora-emotion/  the real HF PEFT LoRA from ../shared/fixtures (copied as is)
//   adapters/index.json                the manifest the app reads
//   ort/…                              onnxruntime-web's .wasm/.mjs runtime files (env.backends.onnx.wasm.wasmPaths)
// Deterministic. The base model takes seconds and ~340 MB, so the output is reused when a stamp of
// every input (this script, the built core/model-gen, the fixture) is unchanged; `--force` rebuilds.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { adapterStats, adapterToFiles, createAdapter, listMethods, loadAdapter } from '@tensorpeft/core';
import { defaultFixturesDir, EXTRA_DTYPES, makeModel } from '@tensorpeft/model-gen';

const here = path.dirname(fileURLToPath(import.meta.url));
const out = path.resolve(here, '../public/generated');
const require = (await import('node:module')).createRequire(import.meta.url);
// dair-ai/emotion's label order: the real adapter's classifier head was trained on it.
const LABELS = ['sadness', 'joy', 'love', 'anger', 'fear', 'surprise'];
const REAL = { name: 'distilbert-lora-emotion', dir: path.join(defaultFixturesDir(), 'distilbert-lora-emotion') };

const MODELS = [
  {
    id: 'tiny-distilbert',
    size: 'tiny',
    seed: 7,
    // The tiny model only: each file is ~100 KiB and takes milliseconds; the base-size one stays
    // fp32 + q8 (another 4 files of 60–130 MiB would make every prepare and the e2e much slower).
    dtypes: EXTRA_DTYPES,
    description: 'tiny DistilBERT (hidden 32, 2 layers, generated weights) with one shipped adapter per method',
  },
  {
    id: 'distilbert-base-emotion',
    size: 'base',
    seed: 0,
    description:
      'DistilBERT with the shapes of distilbert-base-uncased (6 labels; generated weights: the real checkpoint needs the Hub) for the real PEFT LoRA distilbert-lora-emotion',
  },
];

// Tensor factorizations for the tiny model's 32-wide modules (the defaults cover published sizes).
const TINY_CONFIG = {
  LORETTA: { tensor_shape_a: { 32: [4, 8, 8] }, tensor_shape_b: { 32: [8, 8, 4] } },
  TRAC: { tensor_shape: { 32: [2, 4, 4] } },
};

const t0 = performance.now();
const force = process.argv.includes('--force');

/** sha256 over this script, the built packages it runs and the real adapter's files. */
async function inputStamp() {
  const h = createHash('sha256');
  const add = async (file) => {
    h.update(path.relative(here, file));
    h.update(await readFile(file));
  };
  const walk = async (dir) => {
    for (const e of (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else if (/\.(js|json)$/.test(e.name)) await add(p);
    }
  };
  await add(fileURLToPath(import.meta.url));
  for (const pkg of ['@tensorpeft/core', '@tensorpeft/model-gen']) await walk(path.dirname(require.resolve(pkg)));
  if (existsSync(REAL.dir)) for (const f of (await readdir(REAL.dir)).sort()) await add(path.join(REAL.dir, f));
  return h.digest('hex');
}

const stampFile = path.join(out, 'stamp.txt');
const stamp = await inputStamp();
const reuse = !force && existsSync(stampFile) && (await readFile(stampFile, 'utf8')) === stamp && existsSync(path.join(out, 'adapters/index.json'));

if (!reuse) {
  await rm(out, { recursive: true, force: true });
  const manifest = { models: [], adapters: [] };
  const shapes = new Map();
  for (const spec of MODELS) {
    const t = performance.now();
    const model = makeModel({ arch: 'distilbert', size: spec.size, numLabels: LABELS.length, seed: spec.seed, dtypes: spec.dtypes ?? [] });
    const dtypes = {};
    for (const [rel, bytes] of model.files) {
      let data = bytes;
      if (rel === 'config.json') {
        const cfg = JSON.parse(new TextDecoder().decode(bytes));
        cfg.id2label = Object.fromEntries(LABELS.map((l, i) => [String(i), l]));
        cfg.label2id = Object.fromEntries(LABELS.map((l, i) => [l, i]));
        data = new TextEncoder().encode(JSON.stringify(cfg, null, 2));
      }
      if (rel === 'onnx/model.onnx') dtypes.fp32 = bytes.length;
      if (rel === 'onnx/model_quantized.onnx') dtypes.q8 = bytes.length;
      const extra = /^onnx\/model_(\w+)\.onnx$/.exec(rel)?.[1];
      if (extra && EXTRA_DTYPES.includes(extra)) dtypes[extra] = bytes.length;
      const file = path.join(out, 'models', spec.id, rel);
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(file, data);
    }
    shapes.set(spec.id, model.shape);
    manifest.models.push({
      id: spec.id,
      arch: 'distilbert',
      size: spec.size,
      description: spec.description,
      labels: LABELS,
      modules: model.shape.modules.length,
      dtypes,
      // adapter_config.json fields the Train panel starts from, by peft_type (the same as the shipped adapters').
      method_configs: spec.size === 'tiny' ? TINY_CONFIG : {},
      tokenizer: model.tokenizerSource ?? 'generated',
    });
    console.log(`  model ${spec.id}: ${Object.entries(dtypes).map(([k, v]) => `${k} ${(v / 2 ** 20).toFixed(1)} MiB`).join(', ')} in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  }

  const entry = (name, model, a, bytes, extra = {}) => {
    const s = adapterStats(a);
    return { name, model, path: `adapters/${name}/`, peft_type: s.peft_type, modules: s.modules, rank: s.rank, trainable: s.trainable, frozen: s.frozen, stored: s.stored, bytes, ...extra };
  };

  // One nonzero adapter per method on the tiny model, so that each changes the output.
  let seed = 1;
  for (const method of listMethods()) {
    const name = method.peftType.toLowerCase();
    const a = createAdapter({ method, config: TINY_CONFIG[method.peftType] ?? {}, shape: shapes.get('tiny-distilbert'), nonzero: true, seed: seed++ });
    const { configJson, safetensors } = adapterToFiles(a);
    const dir = path.join(out, 'adapters', name);
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'adapter_config.json'), configJson);
    await writeFile(path.join(dir, 'adapter_model.safetensors'), safetensors);
    manifest.adapters.push(entry(name, 'tiny-distilbert', a, safetensors.length));
  }

  // The real PEFT adapter, byte for byte (its config and safetensors; the tokenizer is the model's).
  if (existsSync(REAL.dir)) {
    const dir = path.join(out, 'adapters', REAL.name);
    await mkdir(dir, { recursive: true });
    for (const f of ['adapter_config.json', 'adapter_model.safetensors']) await copyFile(path.join(REAL.dir, f), path.join(dir, f));
    const a = await loadAdapter(REAL.dir, { shape: shapes.get('distilbert-base-emotion') });
    const bytes = (await readFile(path.join(REAL.dir, 'adapter_model.safetensors'))).length;
    manifest.adapters.push(entry(REAL.name, 'distilbert-base-emotion', a, bytes, { real: true, origin: 'HF PEFT 0.20 LoRA (r = 8, q_lin/v_lin, heads pre_classifier/classifier) from fixtures/peft-real' }));
  } else {
    console.warn(`  the real adapter is missing (${REAL.dir}): distilbert-base-emotion ships without it`);
  }
  await mkdir(path.join(out, 'adapters'), { recursive: true });
  await writeFile(path.join(out, 'adapters', 'index.json'), JSON.stringify(manifest, null, 2));
}

// onnxruntime-web runtime files (the version transformers.js imports).
const ortDist = path.resolve(here, '../node_modules/onnxruntime-web/dist');
await mkdir(path.join(out, 'ort'), { recursive: true });
let n = 0;
for (const f of await readdir(ortDist)) {
  if (/^ort-wasm-simd-threaded.*\.(mjs|wasm)$/.test(f)) {
    await copyFile(path.join(ortDist, f), path.join(out, 'ort', f));
    n++;
  }
}
await writeFile(stampFile, stamp);
const m = JSON.parse(await readFile(path.join(out, 'adapters', 'index.json'), 'utf8'));
console.log(
  `playground assets${reuse ? ' (reused: inputs unchanged)' : ''}: models ${m.models.map((x) => x.id).join(', ')}; ${m.adapters.length} adapters (${m.adapters.map((a) => a.name).join(', ')}); ${n} ORT files → ${path.relative(process.cwd(), out)} in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
);
