/**
 * Loading the kernels. The `.wasm` ships next to this module (`dist/kernels.wasm`, committed as
 * `src/kernels.wasm`) and is found with `new URL('./kernels.wasm', import.meta.url)`: Node reads
 * it from disk, browsers fetch it, and bundlers that understand that pattern (Vite, webpack 5,
 * esbuild with a file loader) emit it as an asset. Callers can also pass the bytes, a URL, a
 * `Response`, or an already compiled `WebAssembly.Module`.
 *
 * Every failure is a `WasmLoadError` naming the file and what was wrong.
 */
import { WasmLoadError } from './errors.js';

/** Version of the calling convention; must equal `tp_abi_version()` of the binary. */
export const ABI_VERSION = 2;

/** Where the shipped binary lives, relative to this module. */
export const DEFAULT_WASM_URL: URL = new URL('./kernels.wasm', import.meta.url);

/** The threaded build (imports a shared memory; see threads.ts). */
export const DEFAULT_MT_WASM_URL: URL = new URL('./kernels-mt.wasm', import.meta.url);

export type WasmSource = URL | string | ArrayBuffer | ArrayBufferView | WebAssembly.Module | Response;

/** The binary's exports (pointers are byte offsets into `memory`). */
export interface KernelExports {
  memory: WebAssembly.Memory;
  __heap_base: WebAssembly.Global;
  tp_abi_version(): number;
  tp_run(prog: number, len: number): number;
  tp_gemm(M: number, N: number, K: number, alpha: number, L: number, lda: number, R: number, rsj: number, rsk: number, C: number, ldc: number, accumulate: number, scratch: number): void;
  tp_gemm_packed(M: number, N: number, K: number, alpha: number, L: number, lda: number, Rp: number, C: number, ldc: number, accumulate: number): void;
  tp_pack_panels(dst: number, R: number, N: number, K: number, rsj: number, rsk: number): void;
  tp_apply(rows: number, n: number, m: number, rho: number, s: number, X: number, A: number, B: number, Y: number, T: number, scratch: number): void;
}

const FUNCTIONS = ['tp_abi_version', 'tp_run', 'tp_gemm', 'tp_gemm_packed', 'tp_pack_panels', 'tp_apply'] as const;

export function describe(source: WasmSource | undefined, fallback: URL = DEFAULT_WASM_URL): string {
  if (source === undefined) return fallback.href;
  if (typeof source === 'string') return source;
  if (source instanceof URL) return source.href;
  if (typeof Response !== 'undefined' && source instanceof Response) return source.url || '(Response)';
  if (source instanceof WebAssembly.Module) return '(WebAssembly.Module)';
  return '(bytes)';
}

const isNode = typeof process !== 'undefined' && typeof process.versions?.node === 'string';

/** A URL, or (Node) a file path given as a string. */
function toLocation(spec: string | URL): URL | string {
  if (spec instanceof URL) return spec;
  try {
    return new URL(spec);
  } catch {
    // Not absolute: a file path in Node, relative to the page in browsers.
    return isNode ? spec : new URL(spec, globalThis.location?.href);
  }
}

async function readLocation(where: URL | string, file: string): Promise<Uint8Array> {
  if (typeof where === 'string' || where.protocol === 'file:') {
    // Hidden from bundlers: only Node reaches this branch.
    const fsName = 'node:fs/promises';
    const fs = (await import(/* @vite-ignore */ /* webpackIgnore: true */ fsName)) as typeof import('node:fs/promises');
    try {
      return new Uint8Array(await fs.readFile(where));
    } catch (e) {
      const code = (e as { code?: string }).code;
      throw new WasmLoadError(code === 'ENOENT' ? 'kernels .wasm not found' : 'kernels .wasm could not be read', {
        file,
        expected: 'the kernels.wasm shipped next to the loader (or pass the bytes / a URL to the loader)',
        found: code === 'ENOENT' ? 'no file' : (e as Error).message,
      });
    }
  }
  let res: Response;
  try {
    res = await fetch(where);
  } catch (e) {
    throw new WasmLoadError('kernels .wasm could not be fetched', { file, found: (e as Error).message });
  }
  return readResponse(res, file);
}

async function readResponse(res: Response, file: string): Promise<Uint8Array> {
  if (!res.ok) throw new WasmLoadError('kernels .wasm could not be fetched', { file, expected: 'HTTP 200', found: `HTTP ${res.status}` });
  return new Uint8Array(await res.arrayBuffer());
}

function asBytes(v: ArrayBuffer | ArrayBufferView): Uint8Array {
  return v instanceof ArrayBuffer ? new Uint8Array(v) : new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

/** Compile the kernels from a source (default: the binary next to this module, or `defaultUrl`). */
export async function compileKernels(source?: WasmSource, defaultUrl: URL = DEFAULT_WASM_URL): Promise<WebAssembly.Module> {
  const file = describe(source, defaultUrl);
  if (source instanceof WebAssembly.Module) return source;
  let bytes: Uint8Array;
  if (source === undefined) bytes = await readLocation(defaultUrl, file);
  else if (typeof source === 'string' || source instanceof URL) bytes = await readLocation(toLocation(source), file);
  else if (typeof Response !== 'undefined' && source instanceof Response) bytes = await readResponse(source, file);
  else bytes = asBytes(source as ArrayBuffer | ArrayBufferView);
  const magic = [0x00, 0x61, 0x73, 0x6d];
  if (bytes.length < 8 || magic.some((b, i) => bytes[i] !== b)) {
    throw new WasmLoadError('kernels .wasm is not a WebAssembly binary', {
      file,
      expected: 'bytes starting with \\0asm',
      found: `${bytes.length} bytes starting with ${[...bytes.subarray(0, 4)].map((b) => b.toString(16).padStart(2, '0')).join(' ') || 'nothing'}`,
    });
  }
  try {
    // Copy: compile may not see a view into a larger buffer, and the caller's bytes stay theirs.
    return await WebAssembly.compile(bytes.slice());
  } catch (e) {
    throw new WasmLoadError('kernels .wasm failed to compile (corrupted file, or an engine without WebAssembly SIMD)', {
      file,
      found: (e as Error).message,
    });
  }
}

/**
 * Instantiate a compiled module and check its exports and ABI version. The threaded build takes
 * its (shared) memory as the import `env.memory`.
 */
export async function instantiateKernels(module: WebAssembly.Module, file = '(WebAssembly.Module)', memory?: WebAssembly.Memory): Promise<KernelExports> {
  let instance: WebAssembly.Instance;
  try {
    instance = await WebAssembly.instantiate(module, memory ? { env: { memory } } : {});
  } catch (e) {
    throw new WasmLoadError('kernels .wasm failed to instantiate', { file, found: (e as Error).message });
  }
  const ex = { ...(instance.exports as Record<string, unknown>) };
  if (memory) ex.memory = memory;
  if (!(ex.memory instanceof WebAssembly.Memory)) throw new WasmLoadError('kernels .wasm exports no memory', { file, expected: 'export "memory"', found: Object.keys(ex) });
  if (!(ex.__heap_base instanceof WebAssembly.Global)) throw new WasmLoadError('kernels .wasm exports no __heap_base', { file, expected: 'export "__heap_base"', found: Object.keys(ex) });
  const missing = FUNCTIONS.filter((f) => typeof ex[f] !== 'function');
  if (missing.length) throw new WasmLoadError('kernels .wasm lacks kernel exports', { file, expected: FUNCTIONS, found: `missing ${missing.join(', ')}` });
  const k = ex as unknown as KernelExports;
  const abi = k.tp_abi_version();
  if (abi !== ABI_VERSION) throw new WasmLoadError('kernels .wasm has another ABI version than its loader', { file, expected: ABI_VERSION, found: abi });
  return k;
}

/** Compile (cached for the default binary) and instantiate. */
let defaultModule: Promise<WebAssembly.Module> | undefined;
export async function loadKernels(source?: WasmSource): Promise<KernelExports> {
  let mod: Promise<WebAssembly.Module>;
  if (source === undefined) {
    defaultModule ??= compileKernels();
    mod = defaultModule;
    mod.catch(() => {
      if (defaultModule === mod) defaultModule = undefined;
    });
  } else mod = compileKernels(source);
  return instantiateKernels(await mod, describe(source));
}
