/**
 * Page code on Dawn over Mesa's lavapipe in a Node child process (dawn-page.mjs), for the WebGPU
 * checks that need `shader-f16` (ORT-web's float16 kernels): headless Chromium without a GPU only
 * offers SwiftShader, which lacks it. Shared by dtype-browser-suite.ts (q4f16, standard layout) and
 * genai-webgpu-suite.ts (fp16/q4f16, genai layout).
 *
 * Node's ESM loader imports only file: URLs, so the page bundle, the kernels-wgsl bundle and ORT's
 * glue .mjs are given as files; everything else (model files, ORT's .wasm) is fetched from a local
 * server of the same site, as a page would.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { serve, type ServedFile } from '@tensorpeft/browser-harness';

const here = path.dirname(fileURLToPath(import.meta.url));
const tfDir = path.dirname(createRequire(import.meta.url).resolve('@huggingface/transformers'));
const ortDist = path.dirname(createRequire(path.join(tfDir, 'x.js')).resolve('onnxruntime-web'));

/**
 * Mesa's lavapipe (Vulkan on the CPU) of Debian bookworm-backports (Mesa 25): Dawn exposes
 * `shader-f16` on it. .ci/run installs it: `apt-get install -t bookworm-backports mesa-vulkan-drivers`.
 */
export const LAVAPIPE_ICD = process.env.TENSORPEFT_LAVAPIPE_ICD ?? '/usr/share/vulkan/icd.d/lvp_icd.json';

/** The adapter the Dawn child ran on. */
export interface DawnAdapterInfo {
  vendor: string;
  architecture: string;
  description: string;
  shaderF16: boolean;
}

/** A typed refusal when the driver is missing (rather than Dawn's "no adapter" deep in the child). */
export function needLavapipe(): void {
  if (!existsSync(LAVAPIPE_ICD)) throw new Error(`Mesa's lavapipe ICD is missing (${LAVAPIPE_ICD}): apt-get install -y -t bookworm-backports mesa-vulkan-drivers (Mesa ≥ 23 for shader-f16), or set TENSORPEFT_LAVAPIPE_ICD`);
}

/** The site served for the child, with the two bundles also written to `dir` as files. */
export interface DawnSite {
  origin: string;
  /** file: URL of the page bundle. */
  entry: string;
  /** file: URL of the kernels-wgsl bundle (the entry's `kernelsUrl`). */
  kernels: string;
  /** ORT-web's `wasmPaths` for the child: the glue .mjs as a file, the .wasm over http. */
  wasmPaths: { mjs: string; wasm: string };
  close(): void;
}

/** Serves `files` and writes the bundles at `entryPath` and `kernelsPath` of the site into `dir`. */
export async function dawnSite(files: Record<string, ServedFile>, dir: string, entryPath = '/assets/entry.js', kernelsPath = '/assets/kernels-wgsl.js'): Promise<DawnSite> {
  const { server, origin } = await serve((p: string) => files[p], { 'cache-control': 'no-store' });
  const entry = path.join(dir, 'dawn-entry.mjs');
  const kernels = path.join(dir, 'dawn-kernels-wgsl.mjs');
  await writeFile(entry, files[entryPath]![1]);
  await writeFile(kernels, files[kernelsPath]![1]);
  return {
    origin,
    entry: pathToFileURL(entry).href,
    kernels: pathToFileURL(kernels).href,
    wasmPaths: { mjs: pathToFileURL(path.join(ortDist, 'ort-wasm-simd-threaded.asyncify.mjs')).href, wasm: `${origin}/ort/ort-wasm-simd-threaded.asyncify.wasm` },
    close: () => server.close(),
  };
}

/**
 * Runs `globalThis[global].run(site.origin, ...params)` of the site's entry in the Dawn child on the
 * Vulkan driver LAVAPIPE_ICD names; its JSON result, with the adapter it ran on.
 */
export async function runDawnPage<T>(site: DawnSite, global: string, params: unknown[], dir: string, timeoutMs = 540_000): Promise<T & { adapter: DawnAdapterInfo }> {
  needLavapipe();
  const argsFile = path.join(dir, 'dawn-args.json');
  const out = path.join(dir, 'dawn-result.json');
  await writeFile(argsFile, JSON.stringify({ entry: site.entry, origin: site.origin, global, params, out }));
  await new Promise<void>((resolve, reject) => {
    execFile(process.execPath, [path.join(here, 'dawn-page.mjs'), argsFile], { env: { ...process.env, VK_ICD_FILENAMES: LAVAPIPE_ICD }, maxBuffer: 64 << 20, timeout: timeoutMs }, (err, _stdout, stderr) =>
      err ? reject(new Error(`the Dawn child failed: ${err.message}\n${stderr.split('\n').filter((l) => !l.startsWith('Warning: max')).slice(-20).join('\n')}`)) : resolve(),
    );
  });
  return JSON.parse(await readFile(out, 'utf8')) as T & { adapter: DawnAdapterInfo };
}
