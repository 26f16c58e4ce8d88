/**
 * Browser side of browser.test.ts (bundled with esbuild, served from 127.0.0.1): runs cases
 * prepared in Node on the WebGPU backend (navigator.gpu) inside the page and returns the raw
 * outputs; the test compares them in Node with the JS reference.
 */
import type { MaterializeJob } from '@tensorpeft/core';
import { revive, runKernelCase, type KernelCase } from '@tensorpeft/browser-harness/page';
import { WebGpuBackend, WebGpuUnavailableError } from './index.js';

export type BrowserCase = KernelCase | { op: 'materializeToGpu'; jobs: MaterializeJob[] };

async function runCases(wire: unknown): Promise<{ backend: string; adapter: string; outputs: number[][][] }> {
  const cases = revive(wire) as BrowserCase[];
  const backend = await WebGpuBackend.create();
  const outputs: number[][][] = [];
  try {
    for (const c of cases) {
      if (c.op !== 'materializeToGpu') {
        outputs.push(await runKernelCase(backend, c));
        continue;
      }
      const out: number[][] = [];
      for (const u of await backend.materializeToGpu(c.jobs)) {
        out.push(Array.from(await backend.readBuffer(u.A, u.n * u.rho)), Array.from(await backend.readBuffer(u.B, u.m * u.rho)));
        u.release();
      }
      outputs.push(out);
    }
  } finally {
    backend.destroy();
  }
  return { backend: backend.name, adapter: backend.adapterDescription, outputs };
}

async function missing(): Promise<{ name: string; typed: boolean }> {
  try {
    await WebGpuBackend.create({ gpu: null });
    return { name: 'none', typed: false };
  } catch (e) {
    return { name: (e as Error).name, typed: e instanceof WebGpuUnavailableError };
  }
}

/**
 * ONNX Runtime Web end to end: a session on the WebGPU EP computing `y = (x·A)·B`, fed once with
 * GPU-resident A′ and s·B′ᵀ made by materializeToGpu on ORT's own device, once with CPU copies.
 */
async function ortCase(ortUrl: string, model: number[], wireJobs: unknown, x: number[], rows: number): Promise<{ sameDevice: boolean; gpu: number[]; cpu: number[] }> {
  const ort = (await import(/* @vite-ignore */ ortUrl)) as any;
  ort.env.wasm.wasmPaths = new URL('./', ortUrl).href;
  ort.env.wasm.numThreads = 1;
  const session = await ort.InferenceSession.create(Uint8Array.from(model), { executionProviders: ['webgpu'] });
  const device = (await ort.env.webgpu.device) as GPUDevice; // the device ORT's WebGPU EP uses
  const backend = await WebGpuBackend.create({ device });
  const jobs = revive(wireJobs) as MaterializeJob[];
  const j = jobs[0]!;
  try {
    const [u] = await backend.materializeToGpu([j], { foldScale: true, transposeB: true });
    const X = new ort.Tensor('float32', Float32Array.from(x), [rows, j.n]);
    const gpuOut = await session.run({
      x: X,
      A: ort.Tensor.fromGpuBuffer(u!.A, { dataType: 'float32', dims: [j.n, j.rho] }),
      B: ort.Tensor.fromGpuBuffer(u!.B, { dataType: 'float32', dims: [j.rho, j.m] }),
    });
    const [c] = await backend.materialize([j]);
    const bt = new Float32Array(j.rho * j.m);
    for (let a = 0; a < j.m; a++) for (let k = 0; k < j.rho; k++) bt[k * j.m + a] = Math.fround(c!.s * c!.B[a * j.rho + k]!);
    const cpuOut = await session.run({ x: X, A: new ort.Tensor('float32', c!.A, [j.n, j.rho]), B: new ort.Tensor('float32', bt, [j.rho, j.m]) });
    u!.release();
    return { sameDevice: backend.device === device, gpu: Array.from(gpuOut.y.data as Float32Array), cpu: Array.from(cpuOut.y.data as Float32Array) };
  } finally {
    backend.destroy(); // the shared device itself stays alive (ORT owns it)
    await session.release();
  }
}

/**
 * float16 feeds: the binary16 buffers of `materializeToGpu(…, { dtype: 'float16' })` fed to an ORT
 * WebGPU session as `Tensor.fromGpuBuffer(…, { dataType: 'float16' })`, passed through Identity and
 * read back as ORT's own float16 CPU tensors; beside them the float32 values the conversion saw
 * (the float32 results of the same materialization) for the reference in Node.
 */
async function ortHalfCase(ortUrl: string, model: number[], wireJobs: unknown): Promise<{ halfKernel: string; f32: number[][]; viaOrt: number[][] }> {
  const ort = (await import(/* @vite-ignore */ ortUrl)) as any;
  ort.env.wasm.wasmPaths = new URL('./', ortUrl).href;
  ort.env.wasm.numThreads = 1;
  const session = await ort.InferenceSession.create(Uint8Array.from(model), { executionProviders: ['webgpu'] });
  const backend = await WebGpuBackend.create({ device: (await ort.env.webgpu.device) as GPUDevice });
  const j = (revive(wireJobs) as MaterializeJob[])[0]!;
  try {
    const [h] = await backend.materializeToGpu([j], { foldScale: true, transposeB: true, dtype: 'float16' });
    const [w] = await backend.materializeToGpu([j], { foldScale: true, transposeB: true });
    const out = await session.run({
      A: ort.Tensor.fromGpuBuffer(h!.A, { dataType: 'float16', dims: [j.n, j.rho] }),
      B: ort.Tensor.fromGpuBuffer(h!.B, { dataType: 'float16', dims: [j.rho, j.m] }),
    });
    const bits = (t: { type: string; data: ArrayLike<number> }): number[] => {
      if (t.type !== 'float16') throw new Error(`ORT returned ${t.type}`);
      // onnxruntime-web gives float16 data as the raw bits (Uint16Array) or as Float16Array values.
      const d = t.data as Uint16Array;
      return Array.from(d instanceof Uint16Array ? d : new Uint16Array((d as unknown as { buffer: ArrayBuffer }).buffer));
    };
    const f32 = [Array.from(await backend.readBuffer(w!.A, j.n * j.rho)), Array.from(await backend.readBuffer(w!.B, j.m * j.rho))];
    h!.release();
    w!.release();
    return { halfKernel: backend.halfKernel, f32, viaOrt: [bits(out.a), bits(out.b)] };
  } finally {
    backend.destroy();
    await session.release();
  }
}

Object.assign(globalThis, { tensorpeftTest: { runCases, missing, ortCase, ortHalfCase } });
