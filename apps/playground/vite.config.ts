import { defineConfig } from 'vite';

// Cross-origin isolation lets onnxruntime-web use wasm threads (SharedArrayBuffer).
const isolation = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };

export default defineConfig({
  base: './',
  // A multi-page app to Vite: a missing file is a 404, as on any static host, instead of the
  // single-page fallback that answers every unknown path with index.html (a missing adapter then
  // read as "not JSON" instead of "HTTP 404").
  appType: 'mpa',
  server: { headers: isolation },
  preview: { headers: isolation },
  // transformers.js / onnxruntime-web locate their runtime files themselves: don't pre-bundle them.
  optimizeDeps: { exclude: ['@huggingface/transformers', 'onnxruntime-web'] },
  // keepNames: core's typed errors take their name from their class (shown in the UI).
  esbuild: { keepNames: true },
  build: { target: 'es2022', chunkSizeWarningLimit: 4096 },
  worker: { format: 'es' },
});
