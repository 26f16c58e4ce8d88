/**
 * No WebGPU, or a lost device: a typed error (never a hang), and core's getBackend() falls back.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { getBackend, TensorPeftError } from '@tensorpeft/core';
import { registerWasmBackend, WASM_PRIORITY } from '@tensorpeft/kernels-wasm';
import { WebGpuBackend } from './backend.js';
import { WebGpuDeviceLostError, WebGpuUnavailableError } from './errors.js';
import { registerWebGpuBackend, WEBGPU_PRIORITY } from './index.js';
import { makeBackend } from './test-utils/gpu.js';

const cp = { kind: 'cp' as const, inner: new Float32Array([1, 2, 3]), p: 3, outer: new Float32Array([2]), q: 1, r: 1 };
const noAdapter = { requestAdapter: async () => null } as unknown as GPU;
const hangingAdapter = { requestAdapter: () => new Promise<never>(() => {}) } as unknown as GPU;

describe('missing WebGPU', () => {
  it('no navigator.gpu → WebGpuUnavailableError (a TensorPeftError) saying what to install', async () => {
    const e = await WebGpuBackend.create({ gpu: null }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(WebGpuUnavailableError);
    expect(e).toBeInstanceOf(TensorPeftError);
    expect((e as Error).message).toMatch(/libvulkan1|VK_ICD_FILENAMES|navigator\.gpu/);
  });

  it('no adapter → WebGpuUnavailableError', async () => {
    await expect(WebGpuBackend.create({ gpu: noAdapter })).rejects.toBeInstanceOf(WebGpuUnavailableError);
  });

  it('an adapter request that never answers → WebGpuUnavailableError after the timeout, not a hang', async () => {
    await expect(WebGpuBackend.create({ gpu: hangingAdapter, timeoutMs: 200 })).rejects.toThrow(/requestAdapter did not answer/);
  });

  it("core's getBackend() falls back to wasm; getBackend('webgpu') rejects with the typed error", async () => {
    expect(WEBGPU_PRIORITY).toBeLessThan(WASM_PRIORITY);
    registerWasmBackend();
    registerWebGpuBackend({ gpu: null, priority: 50 }); // even when preferred over wasm
    const b = await getBackend();
    expect(b.name).toBe('wasm');
    await expect(getBackend('webgpu')).rejects.toBeInstanceOf(WebGpuUnavailableError);
  });
});

describe('device loss', () => {
  const made: WebGpuBackend[] = [];
  afterAll(() => made.forEach((b) => b.destroy()));

  it('a device destroyed under the backend → WebGpuDeviceLostError on the next calls', async () => {
    const b = await makeBackend();
    made.push(b);
    expect(await b.evaluate(cp)).toEqual(new Float32Array([2, 4, 6]));
    b.device.destroy();
    await expect(b.evaluate(cp)).rejects.toBeInstanceOf(WebGpuDeviceLostError);
    expect(b.isLost).toBe(true);
    await expect(b.materialize([])).rejects.toBeInstanceOf(WebGpuDeviceLostError);
  });

  it('a device lost while a call waits on the GPU → that call rejects with WebGpuDeviceLostError (no hang)', async () => {
    const b = await makeBackend();
    made.push(b);
    const pending = b.materialize([{ path: 'm', n: 3, m: 1, rho: 1, s: 1, a: cp, b: { ...cp, p: 1, inner: new Float32Array([1]) } }]);
    b.device.destroy(); // the submission is already encoded; its read-back is in flight
    await expect(pending).rejects.toBeInstanceOf(WebGpuDeviceLostError);
  });

  it('destroy() frees everything; later calls reject with WebGpuDeviceLostError', async () => {
    const b = await makeBackend();
    made.push(b);
    await b.evaluate(cp);
    expect(b.poolStats().live).toBeGreaterThan(0);
    b.destroy();
    b.destroy(); // idempotent
    expect(b.poolStats().live).toBe(0);
    await expect(b.evaluate(cp)).rejects.toThrow(/destroyed/);
  });
});
