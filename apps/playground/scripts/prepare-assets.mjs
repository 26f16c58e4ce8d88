// Generates what the playground serves offline into public/generated/ (gitignored):
//   models/tiny-distilbert/…   a tiny DistilBERT sequence classifier (@tensorpeft/model-gen)
//   adapters/<method>/…        one nonzero adapter per method (core createAdapter + adapterToFiles)
//   adapters/index.json        the manifest the app reads
//   ort/…                      onnxruntime-web's .wasm/.mjs runtime files (env.backends.onnx.wasm.wasmPaths)
// Deterministic; skips work when the output is already there for the same inputs.
import { copyFile, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { adapterStats, adapterToFiles, createAdapter, listMethods } from '@tensorpeft/core';
import { makeModel } from '@tensorpeft/model-gen';

const here = path.dirname(fileURLToPath(import.meta.url));
const out = path.resolve(here, '../public/generated');
const MODEL_ID = 'tiny-distilbert';
const NUM_LABELS = 6;
const LABELS = ['sadness', 'joy', 'love', 'anger', 'fear', 'surprise'];

const t0 = performance.now();
await rm(out, { recursive: true, force: true });

// Model
const model = makeModel({ arch: 'distilbert', size: 'tiny', numLabels: NUM_LABELS, seed: 7 });
for (const [rel, bytes] of model.files) {
  let data = bytes;
  if (rel === 'config.json') {
    const cfg = JSON.parse(new TextDecoder().decode(bytes));
    cfg.id2label = Object.fromEntries(LABELS.map((l, i) => [String(i), l]));
    cfg.label2id = Object.fromEntries(LABELS.map((l, i) => [l, i]));
    data = new TextEncoder().encode(JSON.stringify(cfg, null, 2));
  }
  const file = path.join(out, 'models', MODEL_ID, rel);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, data);
}

// Tensor factorizations for the tiny model's 32-wide modules (the defaults cover published sizes).
const TINY_CONFIG = {
  LORETTA: { tensor_shape_a: { 32: [4, 8, 8] }, tensor_shape_b: { 32: [8, 8, 4] } },
  TRAC: { tensor_shape: { 32: [2, 4, 4] } },
};

// Adapters: one per method, nonzero so that each changes the output.
const adapters = [];
let seed = 1;
for (const method of listMethods()) {
  const name = method.peftType.toLowerCase();
  const a = createAdapter({ method, config: TINY_CONFIG[method.peftType] ?? {}, shape: model.shape, nonzero: true, seed: seed++ });
  const { configJson, safetensors } = adapterToFiles(a);
  const dir = path.join(out, 'adapters', name);
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'adapter_config.json'), configJson);
  await writeFile(path.join(dir, 'adapter_model.safetensors'), safetensors);
  const s = adapterStats(a);
  adapters.push({ name, path: `adapters/${name}/`, peft_type: s.peft_type, modules: s.modules, rank: s.rank, trainable: s.trainable, frozen: s.frozen, stored: s.stored, bytes: s.bytes });
}
await writeFile(
  path.join(out, 'adapters', 'index.json'),
  JSON.stringify({ model: { id: MODEL_ID, path: `models/`, arch: 'distilbert', labels: LABELS, modules: model.shape.modules.length }, adapters }, null, 2),
);

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
console.log(`playground assets: model ${MODEL_ID}, ${adapters.length} adapters (${adapters.map((a) => a.name).join(', ')}), ${n} ORT files → ${path.relative(process.cwd(), out)} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
