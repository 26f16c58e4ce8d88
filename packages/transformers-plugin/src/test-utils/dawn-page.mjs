// The browser entry of the dtype checks (dtype-browser-entry.ts, bundled for the browser by esbuild)
// run in a Node child process with Dawn (the `webgpu` npm package) as `navigator.gpu`: the same
// transformers.js web build, ORT-web WebGPU EP and plugin code a page runs, on a Vulkan device that
// has `shader-f16` (Mesa's lavapipe ≥ 23; Chromium only ever offers its own SwiftShader, which lacks
// it, when there is no GPU). Spawned by dawn-child.ts (dtype-dawn.test.ts, genai-webgpu-dawn.test.ts):
// `node dawn-page.mjs ARGS.json`, where ARGS = { entry, origin, global, params, out } (entry: a file:
// URL of the bundle; global: the name under which the bundle sets `{ run }` on globalThis; the page
// then runs `run(origin, ...params)`; out: where the JSON result goes). Without `global`/`params`:
// the dtype entry's `tensorpeftDtypeTest.run(origin, options, spec)`. Plain JS: the child needs no
// TypeScript loader.
//
// Three things differ from a page, each handled here rather than in the code under test:
// - the page's globals: `navigator.gpu` and the WebGPU classes come from Dawn;
// - Node's own identity: transformers.js (`process.release.name`), the plugin and emscripten
//   (`process.versions.node`) would take their Node paths (onnxruntime-node, files, a temp folder),
//   so both are hidden once undici has loaded (it reads the version on first use);
// - dawn.node refuses typed arrays over a SharedArrayBuffer in `GPUQueue.writeBuffer`: dawn-shims.mjs.
import { readFileSync, writeFileSync } from 'node:fs';
import { create, globals } from 'webgpu';
import { copySharedWrites } from './dawn-shims.mjs';

const args = JSON.parse(readFileSync(process.argv[2], 'utf8'));
Object.assign(globalThis, globals);
copySharedWrites(globals.GPUQueue);
const gpu = create(['backend=vulkan']);
const adapter = await gpu.requestAdapter();
if (!adapter) throw new Error('Dawn found no Vulkan adapter (VK_ICD_FILENAMES should name Mesa lavapipe: /usr/share/vulkan/icd.d/lvp_icd.json)');
const info = { vendor: adapter.info.vendor, architecture: adapter.info.architecture, description: adapter.info.description, shaderF16: adapter.features.has('shader-f16') };
Object.defineProperty(globalThis, 'navigator', { value: { gpu, userAgent: 'tensorpeft-dawn-page', language: 'en' }, configurable: true });
await (await fetch(`${args.origin}/`)).text();
Object.defineProperty(process, 'release', { value: { name: 'dawn-page' }, configurable: true });
const versions = { ...process.versions };
delete versions.node;
Object.defineProperty(process, 'versions', { value: versions, configurable: true });

await import(args.entry);
const page = globalThis[args.global ?? 'tensorpeftDtypeTest'];
if (!page) throw new Error(`the bundle ${args.entry} set no globalThis.${args.global ?? 'tensorpeftDtypeTest'}`);
const result = await page.run(args.origin, ...(args.params ?? [args.options, args.spec]));
writeFileSync(args.out, JSON.stringify({ ...result, adapter: info }));
// Dawn keeps the event loop alive after the device is gone.
process.exit(0);
