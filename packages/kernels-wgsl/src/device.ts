/**
 * Getting a GPUDevice: a caller's own (e.g. the one ONNX Runtime Web uses), `navigator.gpu` in a
 * browser, or Dawn through the `webgpu` npm package in Node. Every failure is a
 * WebGpuUnavailableError with what to do about it; nothing here can hang (requestAdapter and
 * requestDevice resolve or reject; both are raced against a timeout anyway).
 */
import { WebGpuUnavailableError } from './errors.js';

/** Debian's `chromium` package ships SwiftShader's Vulkan ICD here (a CPU Vulkan driver). */
export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

export interface DeviceOptions {
  /** Use this device (shared with ONNX Runtime Web: `ort.env.webgpu.device`); not destroyed by us. */
  device?: GPUDevice;
  /** The GPU entry point (default `navigator.gpu`, or Dawn in Node). `null`: behave as if there is none. */
  gpu?: GPU | null;
  powerPreference?: GPUPowerPreference;
  /**
   * Node only: when no adapter is found and neither VK_ICD_FILENAMES nor VK_DRIVER_FILES is set,
   * retry with SwiftShader's ICD from Debian's chromium package (a CPU driver: correct, slow).
   * Default true.
   */
  swiftshaderFallback?: boolean;
  /** Give up on adapter/device requests after this long (default 20 s). */
  timeoutMs?: number;
}

export interface AcquiredDevice {
  device: GPUDevice;
  /** We created it, so `destroy()` destroys it. */
  owned: boolean;
  /** "vendor architecture (description)" of the adapter, when known. */
  description: string;
  /** A software (CPU) adapter such as SwiftShader: correct but slow. */
  software: boolean;
  /**
   * Node: Dawn's GPU instance. It must stay referenced while the device lives (Dawn crashes when
   * it is garbage-collected under a live device), and be dropped after, or Node cannot exit.
   */
  instance?: GPU;
}

const isNode = typeof process !== 'undefined' && typeof process.versions?.node === 'string';

const HINT_NODE =
  'in Node, WebGPU comes from the `webgpu` npm package (Dawn), which needs the Vulkan loader (Debian: apt-get install -y libvulkan1) and a Vulkan driver; ' +
  `without a GPU, Debian's chromium package provides SwiftShader: VK_ICD_FILENAMES=${SWIFTSHADER_ICD}`;
const HINT_BROWSER = 'the browser has no WebGPU (navigator.gpu): use a WebGPU browser over https or localhost (headless Chromium: --enable-unsafe-webgpu)';

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new WebGpuUnavailableError(`${what} did not answer`, { expected: `an answer within ${ms} ms` })), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}

async function dawn(): Promise<{ create: (flags: string[]) => GPU; globals: Record<string, unknown> }> {
  const spec = 'webgpu'; // a variable: browser bundlers must not try to bundle Dawn
  try {
    return (await import(/* @vite-ignore */ spec)) as { create: (flags: string[]) => GPU; globals: Record<string, unknown> };
  } catch (e) {
    // An optional peer dependency (a 132 MB native download browser users never need): say how to add it.
    throw new WebGpuUnavailableError('the `webgpu` npm package (Dawn for Node) could not be loaded; WebGPU in Node needs it: npm install webgpu', {
      expected: 'npm package webgpu (an optional peer dependency of @tensorpeft/kernels-wgsl)',
      found: (e as Error).message,
    });
  }
}

async function adapterFrom(gpu: GPU, opts: DeviceOptions, ms: number): Promise<GPUAdapter | null> {
  try {
    return await withTimeout(gpu.requestAdapter(opts.powerPreference ? { powerPreference: opts.powerPreference } : undefined), ms, 'requestAdapter');
  } catch (e) {
    if (e instanceof WebGpuUnavailableError) throw e;
    return null;
  }
}

function describe(info: GPUAdapterInfo | undefined): { description: string; software: boolean } {
  if (!info) return { description: 'unknown adapter', software: false };
  const i = info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
  const description = [i.vendor, i.architecture].filter(Boolean).join(' ') + (i.description ? ` (${i.description})` : '');
  const software = i.isFallbackAdapter === true || /swiftshader|llvmpipe|lavapipe|warp|software/i.test(`${i.architecture} ${i.description} ${i.device}`);
  return { description: description || 'unknown adapter', software };
}

export async function acquireDevice(opts: DeviceOptions = {}): Promise<AcquiredDevice> {
  if (opts.device) {
    const info = (opts.device as GPUDevice & { adapterInfo?: GPUAdapterInfo }).adapterInfo;
    return { device: opts.device, owned: false, ...describe(info) };
  }
  const ms = opts.timeoutMs ?? 20_000;
  let gpu: GPU | null | undefined = opts.gpu;
  let create: ((flags: string[]) => GPU) | undefined;
  if (gpu === undefined) {
    const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
    gpu = nav?.gpu;
    if (!gpu && isNode) {
      create = (await dawn()).create;
      gpu = create([]);
    }
  }
  if (!gpu) throw new WebGpuUnavailableError('WebGPU is not available', { expected: 'navigator.gpu', found: isNode ? HINT_NODE : HINT_BROWSER });
  let adapter = await adapterFrom(gpu, opts, ms);
  if (!adapter && create && (opts.swiftshaderFallback ?? true) && !process.env.VK_ICD_FILENAMES && !process.env.VK_DRIVER_FILES) {
    const { existsSync } = await import('node:fs');
    if (existsSync(SWIFTSHADER_ICD)) {
      process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
      gpu = create([]);
      adapter = await adapterFrom(gpu, opts, ms);
    }
  }
  if (!adapter) throw new WebGpuUnavailableError('no WebGPU adapter', { expected: 'a GPU adapter', found: isNode ? HINT_NODE : 'requestAdapter() returned null (WebGPU disabled or blocklisted)' });
  const lim = adapter.limits;
  let device: GPUDevice;
  try {
    device = await withTimeout(
      adapter.requestDevice({
        // float16 results are written natively where the adapter offers shader-f16 (half.ts).
        ...(adapter.features.has('shader-f16') ? { requiredFeatures: ['shader-f16' as GPUFeatureName] } : {}),
        // Large merges (a 4096×4096 weight plus A′, B′) need more than the 128 MiB default binding.
        requiredLimits: { maxStorageBufferBindingSize: lim.maxStorageBufferBindingSize, maxBufferSize: lim.maxBufferSize },
      }),
      ms,
      'requestDevice',
    );
  } catch (e) {
    if (e instanceof WebGpuUnavailableError) throw e;
    throw new WebGpuUnavailableError('requestDevice failed', { found: (e as Error).message });
  }
  return { device, owned: true, ...describe(adapter.info), ...(create ? { instance: gpu } : {}) };
}
