// Part of `build`: copy the committed binaries and the worker script next to the compiled loader
// (dist/), where `new URL('./kernels.wasm', import.meta.url)` and friends find them. Needs no C
// toolchain.
import { copyFileSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const src = fileURLToPath(new URL('../src/', import.meta.url));
const dist = fileURLToPath(new URL('../dist/', import.meta.url));
mkdirSync(dist, { recursive: true });
for (const f of ['kernels.wasm', 'kernels-mt.wasm', 'kernels-worker.js']) copyFileSync(`${src}${f}`, `${dist}${f}`);
