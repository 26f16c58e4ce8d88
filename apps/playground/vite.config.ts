import { defineConfig } from 'vite';

// Cross-origin isolation lets onnxruntime-web use wasm threads (SharedArrayBuffer).
const isolation = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };

export default defineConfig({
  base: './',
  server: { headers: isolation },
  preview: { headers: isolation },
  // transformers.js / onnxruntime-web locate their runtime files themselves: don't pre-bundle them.
  optimizeDeps: { exclude: ['@huggingface/transformers', 'onnxruntime-web'] },
  // keepNames: core's typed errors take their name from their class (shown in the UI).
  esbuild: { keepNames: true },
  build: { target: 'es2022', chunkSizeWarningLimit: 4096 },
  worker: { format: 'es' },
});
