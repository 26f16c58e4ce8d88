// Copies ONNX Runtime Web's runtime files (.wasm and its .mjs loader) into public/ort/, so the app
// serves them itself: transformers.js otherwise fetches them from a CDN. Uses the onnxruntime-web
// that @huggingface/transformers depends on.
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const fromTransformers = createRequire(createRequire(import.meta.url).resolve('@huggingface/transformers'));
let dir = path.dirname(fromTransformers.resolve('onnxruntime-web'));
while (path.basename(dir) !== 'dist') dir = path.dirname(dir);
mkdirSync('public/ort', { recursive: true });
const files = readdirSync(dir).filter((f) => /^ort-wasm-simd-threaded.*\.(mjs|wasm)$/.test(f));
for (const f of files) copyFileSync(path.join(dir, f), path.join('public/ort', f));
console.log(`copied ${files.length} ONNX Runtime Web files from ${dir} to public/ort/`);
