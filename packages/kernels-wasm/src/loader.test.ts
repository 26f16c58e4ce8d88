/**
 * Loading: the shipped binary loads from the file next to the module or from bytes; a missing,
 * truncated, corrupted or foreign `.wasm` gives a WasmLoadError naming the problem; and core's
 * getBackend() falls back to JS when the wasm backend cannot initialize.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { getBackend, registerBackend, TensorPeftError } from '@tensorpeft/core';
import { WasmBackend } from './backend.js';
import { WasmKernelError, WasmLoadError } from './errors.js';
import { Heap } from './heap.js';
import { registerWasmBackend } from './index.js';
import { compileKernels, DEFAULT_WASM_URL, loadKernels } from './loader.js';

const bytes = readFileSync(fileURLToPath(DEFAULT_WASM_URL));

async function loadError(p: Promise<unknown>): Promise<WasmLoadError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(WasmLoadError);
  expect(e).toBeInstanceOf(TensorPeftError);
  return e as WasmLoadError;
}

describe('loader', () => {
  it('loads the binary next to the module, and from bytes, a file URL and a compiled Module', async () => {
    const k = await loadKernels();
    expect(k.tp_abi_version()).toBe(2);
    expect((await WasmBackend.create({ source: bytes })).name).toBe('wasm');
    expect((await WasmBackend.create({ source: DEFAULT_WASM_URL })).name).toBe('wasm');
    expect((await WasmBackend.create({ source: fileURLToPath(DEFAULT_WASM_URL) })).name).toBe('wasm');
    expect((await WasmBackend.create({ source: await compileKernels(bytes) })).name).toBe('wasm');
  });

  it('a missing file is a WasmLoadError naming it', async () => {
    const e = await loadError(WasmBackend.create({ source: new URL('./no-such-kernels.wasm', import.meta.url) }));
    expect(e.message).toMatch(/not found/);
    expect(e.details.file).toMatch(/no-such-kernels\.wasm$/);
    expect((await loadError(WasmBackend.create({ source: '/nonexistent dir/kernels.wasm' }))).details.file).toBe('/nonexistent dir/kernels.wasm');
  });

  it('bytes that are not WebAssembly are rejected before compiling', async () => {
    const e = await loadError(WasmBackend.create({ source: new TextEncoder().encode('<!doctype html><html>404</html>') }));
    expect(e.message).toMatch(/not a WebAssembly binary/);
    expect(e.details.found).toMatch(/starting with 3c 21 64 6f/);
  });

  it('a truncated or corrupted binary fails to compile with a WasmLoadError', async () => {
    const truncated = bytes.subarray(0, bytes.length >> 1);
    expect((await loadError(WasmBackend.create({ source: truncated }))).message).toMatch(/failed to compile/);
    const corrupted = Uint8Array.from(bytes);
    for (let i = 64; i < corrupted.length; i += 97) corrupted[i] = corrupted[i]! ^ 0x5a;
    expect((await loadError(WasmBackend.create({ source: corrupted }))).message).toMatch(/failed to compile/);
  });

  it('a valid module without the kernels is a WasmLoadError listing what is missing', async () => {
    const empty = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
    expect((await loadError(WasmBackend.create({ source: empty }))).message).toMatch(/exports no memory/);
  });

  it('a program the kernels reject is a WasmKernelError, not a silent no-op', () => {
    return loadKernels().then((k) => {
      const heap = new Heap(k);
      heap.ensure(heap.base + 16);
      heap.i32[heap.base / 4] = 99;
      expect(k.tp_run(heap.base, 1)).toBe(-1);
      expect(new WasmKernelError('x')).toBeInstanceOf(TensorPeftError);
    });
  });
});

describe('registration and fallback', () => {
  it('getBackend() prefers wasm once registered', async () => {
    registerWasmBackend();
    expect((await getBackend()).name).toBe('wasm');
    expect((await getBackend('wasm')).name).toBe('wasm');
  });

  it('getBackend() falls back to js when the wasm binary is broken; forcing wasm reports why', async () => {
    registerWasmBackend({ source: new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 0xff, 0xff]) });
    expect((await getBackend()).name).toBe('js');
    const e = await loadError(getBackend('wasm'));
    expect(e.message).toMatch(/failed to compile/);
    // A working registration replaces the broken one.
    registerWasmBackend({});
    expect((await getBackend()).name).toBe('wasm');
    registerBackend('wasm', () => WasmBackend.create(), 10);
  });
});
