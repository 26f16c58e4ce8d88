/**
 * The WebGPU backend: core's Backend interface on WGSL compute shaders, plus GPU-resident extras
 * (`materializeToGpu`, `mergeOnGpu`, `readBuffer`) for callers that keep tensors on the device —
 * ONNX Runtime Web's WebGPU execution provider above all (see the README: share the GPUDevice via
 * `ort.env.webgpu.device`, feed `Tensor.fromGpuBuffer(u.A, …)`).
 *
 * Every call compiles a Program (program.ts), uploads its inputs into one pooled heap buffer,
 * encodes every dispatch into one command buffer and submits once; results are read back through
 * one pooled staging buffer (or copied into pooled result buffers that stay on the GPU).
 */
import { ShapeMismatchError, TensorPeftError, type Backend, type MatExpr, type MaterializeJob, type ModuleUpdate, type WeightLayout } from '@tensorpeft/core';
import { acquireDevice, type DeviceOptions } from './device.js';
import { WebGpuDeviceLostError, WebGpuKernelError } from './errors.js';
import { BufferPool, type PoolStats } from './pool.js';
import { Program } from './program.js';
import { HALF_NATIVE, HALF_PACK, halfBufferBytes, halfInvocations } from './half.js';
import { EW, SHADERS, SLOT_WORDS, type KernelName } from './shaders.js';

// GPUBufferUsage / GPUMapMode values (spelled out: Node has no such globals without Dawn's).
const MAP_READ = 0x0001;
const COPY_SRC = 0x0004;
const COPY_DST = 0x0008;
const STORAGE = 0x0080;
const MAP_MODE_READ = 0x0001;
const SLOT_BYTES = SLOT_WORDS * 4;

export interface WebGpuBackendOptions extends DeviceOptions {
  /**
   * GEMM kernel: 'tiled' (workgroup shared memory, for GPUs), 'simple' (no shared memory or
   * barriers), or 'auto' (default: simple on software adapters such as SwiftShader, tiled otherwise).
   */
  gemm?: 'tiled' | 'simple' | 'auto';
  /**
   * float16 results (`materializeToGpu(…, { dtype: 'float16' })`): 'native' writes `f16` (needs the
   * device feature `shader-f16`), 'pack' packs pairs with WGSL's core `pack2x16float` (any device),
   * 'auto' (default): native where the device has `shader-f16`, pack otherwise.
   */
  half?: 'native' | 'pack' | 'auto';
}

/** One module's A′ `[n, ρ]` and B′ `[m, ρ]` (or `[ρ, m]`, see options) living in GPUBuffers. */
export interface GpuModuleUpdate {
  path: string;
  n: number;
  m: number;
  rho: number;
  /** The scale; 1 when it was folded into B. */
  s: number;
  /** Element type of A and B (`GpuMaterializeOptions.dtype`). */
  dtype: 'float32' | 'float16';
  /**
   * `[n, ρ]`, usage STORAGE | COPY_SRC | COPY_DST: float32, exactly `n·ρ·4` bytes (≥ 4); or
   * float16, `n·ρ` binary16 values in `⌈n·ρ/2⌉` 32-bit words.
   */
  A: GPUBuffer;
  /** `[m, ρ]`, or `[ρ, m]` with `transposeB` (the plugin's graph-input layout); dtype and size as A. */
  B: GPUBuffer;
  bLayout: 'm_rho' | 'rho_m';
  /** Hand A and B back to the backend's pool (reused by the next materialization of that size). */
  release(): void;
}

export interface GpuMaterializeOptions {
  /** Multiply B′ by s (and report s = 1): the plugin feeds `(x·A)·B` with s folded into B. */
  foldScale?: boolean;
  /** Write B′ᵀ `[ρ, m]` instead of B′ `[m, ρ]` (the plugin's graph input B is `[ρ, m]`). */
  transposeB?: boolean;
  /**
   * Element type of the results (default 'float32'). 'float16': A′ and B′ (after folding s) are
   * computed in float32 as always, then each value rounded once to binary16 (the inputs of fp16
   * graphs: `Tensor.fromGpuBuffer(u.A, { dataType: 'float16', dims })`).
   */
  dtype?: 'float32' | 'float16';
}

function checkUpdate(u: ModuleUpdate): void {
  if (u.A.length !== u.n * u.rho) throw new ShapeMismatchError(`A′ of ${u.path} must be [n, ρ]`, { expected: [u.n, u.rho], found: u.A.length });
  if (u.B.length !== u.m * u.rho) throw new ShapeMismatchError(`B′ of ${u.path} must be [m, ρ]`, { expected: [u.m, u.rho], found: u.B.length });
}

function checkJob(j: MaterializeJob): void {
  const la = Program.exprLength(j.a);
  const lb = Program.exprLength(j.b);
  if (la !== j.n * j.rho) throw new ShapeMismatchError(`A′ of ${j.path} must be [n, ρ]`, { expected: [j.n, j.rho], found: la });
  if (lb !== j.m * j.rho) throw new ShapeMismatchError(`B′ of ${j.path} must be [m, ρ]`, { expected: [j.m, j.rho], found: lb });
}

/** Read back, or copy into GPU buffers (converted to binary16 with `half`). */
type Target = { kind: 'read' } | { kind: 'gpu'; buffers: GPUBuffer[]; half?: boolean };

export class WebGpuBackend implements Backend {
  readonly name = 'webgpu';
  private readonly pool: BufferPool;
  private pipelines!: Record<KernelName, GPUComputePipeline>;
  private lostInfo: { reason: string; message: string } | undefined;
  private destroyed = false;
  /**
   * Rejecters of the waits in flight, failed with WebGpuDeviceLostError when the device is lost so
   * that no call hangs. (Not `Promise.race([p, device.lost])`: every race adds a reaction to the
   * never-settling lost promise, which keeps it forever — a leak of a few hundred bytes per call.)
   */
  private readonly waiters = new Set<(e: Error) => void>();
  /** Which GEMM kernel this backend runs ('tiled' or 'simple', see WebGpuBackendOptions.gemm). */
  gemmKernel: 'tiled' | 'simple' = 'tiled';
  /** Which float16 kernel `dtype: 'float16'` results use (see WebGpuBackendOptions.half). */
  halfKernel: 'native' | 'pack' = 'pack';
  /** Compiled on first use: most callers never ask for float16. */
  private halfPipeline: Promise<GPUComputePipeline> | undefined;
  /** Dawn's instance in Node (see AcquiredDevice.instance). */
  private instance: GPU | undefined;

  private constructor(
    readonly device: GPUDevice,
    private readonly owned: boolean,
    /** The adapter, in words ("google swiftshader (SwiftShader driver 5.0.0)"). */
    readonly adapterDescription: string,
    /** A software adapter (SwiftShader & co.): correct, ~100× slower than the wasm backend. */
    readonly software: boolean,
  ) {
    this.pool = new BufferPool(device);
    device.lost.then((info) => {
      this.lostInfo = { reason: info.reason, message: info.message };
      const err = this.lostError();
      for (const reject of this.waiters) reject(err);
      this.waiters.clear();
    });
  }

  /** Create the backend (rejects with WebGpuUnavailableError when there is no WebGPU). */
  static async create(opts: WebGpuBackendOptions = {}): Promise<WebGpuBackend> {
    const got = await acquireDevice(opts);
    const b = new WebGpuBackend(got.device, got.owned, got.description, got.software);
    b.instance = got.instance;
    const gemm = opts.gemm ?? 'auto';
    b.gemmKernel = gemm === 'auto' ? (got.software ? 'simple' : 'tiled') : gemm;
    const f16 = got.device.features.has('shader-f16');
    const half = opts.half ?? 'auto';
    if (half === 'native' && !f16) {
      b.destroy();
      throw new WebGpuKernelError("half: 'native' needs the device feature shader-f16", { expected: 'shader-f16', found: `features: ${[...got.device.features].join(', ') || 'none'}` });
    }
    b.halfKernel = half === 'auto' ? (f16 ? 'native' : 'pack') : half;
    try {
      await b.compile();
    } catch (e) {
      b.destroy();
      throw e;
    }
    return b;
  }

  private async compile(): Promise<void> {
    const d = this.device;
    d.pushErrorScope('validation');
    // One at a time: concurrent createComputePipelineAsync calls crash Dawn on SwiftShader.
    const entries: Array<readonly [KernelName, GPUComputePipeline]> = [];
    try {
      for (const k of Object.keys(SHADERS) as KernelName[]) {
        const module = d.createShaderModule({ code: SHADERS[k], label: `tensorpeft-${k}` });
        entries.push([k, await d.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: 'main' }, label: `tensorpeft-${k}` })]);
      }
    } catch (e) {
      await d.popErrorScope().catch(() => null);
      throw new WebGpuKernelError('WGSL pipeline creation failed', { found: (e as Error).message });
    }
    const err = await d.popErrorScope();
    if (err) throw new WebGpuKernelError('WGSL pipeline creation failed', { found: err.message });
    this.pipelines = Object.fromEntries(entries) as Record<KernelName, GPUComputePipeline>;
  }

  private half(): Promise<GPUComputePipeline> {
    this.halfPipeline ??= (async () => {
      const d = this.device;
      const code = this.halfKernel === 'native' ? HALF_NATIVE : HALF_PACK;
      d.pushErrorScope('validation');
      let pipe: GPUComputePipeline;
      try {
        const module = d.createShaderModule({ code, label: `tensorpeft-half-${this.halfKernel}` });
        pipe = await d.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: 'main' }, label: `tensorpeft-half-${this.halfKernel}` });
      } catch (e) {
        await d.popErrorScope().catch(() => null);
        throw new WebGpuKernelError('WGSL pipeline creation failed (float16 results)', { found: (e as Error).message });
      }
      const err = await d.popErrorScope();
      if (err) throw new WebGpuKernelError('WGSL pipeline creation failed (float16 results)', { found: err.message });
      return pipe;
    })();
    // A failed compile is not cached: the next call reports it again.
    this.halfPipeline.catch(() => {
      this.halfPipeline = undefined;
    });
    return this.halfPipeline;
  }

  private lostError(): WebGpuDeviceLostError {
    if (this.destroyed) return new WebGpuDeviceLostError('the WebGPU backend was destroyed', { found: 'destroy() called' });
    const i = this.lostInfo;
    return new WebGpuDeviceLostError('the WebGPU device was lost', { expected: 'a live GPUDevice (create a new backend)', found: i ? `${i.reason}: ${i.message}` : 'lost' });
  }

  /** Whether the device is gone (lost or destroyed): every call then rejects with WebGpuDeviceLostError. */
  get isLost(): boolean {
    return this.destroyed || this.lostInfo !== undefined;
  }

  /** `p`, or WebGpuDeviceLostError as soon as the device is lost. */
  private guard<T>(p: Promise<T>): Promise<T> {
    if (this.isLost) return Promise.reject(this.lostError());
    return new Promise<T>((resolve, reject) => {
      this.waiters.add(reject);
      p.then(
        (v) => {
          this.waiters.delete(reject);
          resolve(v);
        },
        (e: unknown) => {
          this.waiters.delete(reject);
          reject(e);
        },
      );
    });
  }

  private alive(): void {
    if (this.isLost) throw this.lostError();
  }

  /** Pool statistics (buffers created / alive / idle): the leak check of the tests. */
  poolStats(): PoolStats {
    return this.pool.stats();
  }

  /** Destroy idle pooled buffers (memory back to the device; the backend stays usable). */
  trim(): void {
    this.pool.trim();
  }

  /**
   * Destroy every GPU buffer of the backend — GPU-resident results included — and the device when
   * the backend created it (a shared device, e.g. ORT's, is left alone). Idempotent; later calls
   * reject with WebGpuDeviceLostError.
   */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.pool.destroy();
    if (this.owned) this.device.destroy();
    const err = this.lostError();
    for (const reject of this.waiters) reject(err);
    this.waiters.clear();
    this.device.lost.then(() => {
      this.instance = undefined;
    });
  }

  // -------------------------------------------------------------------------------------------

  /** Encode and submit one program; read back `outputs` or copy them into GPU buffers. */
  private async run(prog: Program, outputs: Array<[number, number]>, target: Target = { kind: 'read' }): Promise<Float32Array[]> {
    this.alive();
    const d = this.device;
    const half = target.kind === 'gpu' && target.half ? await this.guard(this.half()) : undefined;
    const heapBytes = Math.max(4, prog.size * 4);
    const maxBinding = d.limits.maxStorageBufferBindingSize;
    if (heapBytes > maxBinding) {
      throw new WebGpuKernelError('problem too large for one storage binding', { expected: `≤ ${maxBinding} bytes`, found: `${heapBytes} bytes` });
    }
    const pool = this.pool;
    const total = outputs.reduce((a, [, len]) => a + len, 0);
    d.pushErrorScope('out-of-memory');
    d.pushErrorScope('validation');
    const heap = pool.acquire(heapBytes, STORAGE | COPY_SRC | COPY_DST);
    const nd = prog.dispatches.length;
    // float16 results: one more parameter slot per output, for its conversion dispatch.
    const slots = nd + (half ? outputs.length : 0);
    const pbuf = pool.acquire(Math.max(1, slots) * SLOT_BYTES, STORAGE | COPY_DST);
    const staging = target.kind === 'read' ? pool.acquire(Math.max(4, total * 4), MAP_READ | COPY_DST) : undefined;
    let readback: Float32Array | undefined;
    let scopes = 2;
    try {
      for (const up of prog.uploads) d.queue.writeBuffer(heap, up.off * 4, up.data.buffer, up.data.byteOffset, up.data.byteLength);
      if (slots) {
        const params = new Uint32Array(slots * SLOT_WORDS);
        prog.dispatches.forEach((x, i) => params.set(x.params, i * SLOT_WORDS));
        if (half) outputs.forEach(([off, len], i) => params.set([off, len], (nd + i) * SLOT_WORDS));
        d.queue.writeBuffer(pbuf, 0, params.buffer, 0, params.byteLength);
      }
      const enc = d.createCommandEncoder({ label: 'tensorpeft' });
      for (const g of prog.gpuInputs) enc.copyBufferToBuffer(g.buffer, 0, heap, g.off * 4, g.len * 4);
      if (nd) {
        const pass = enc.beginComputePass({ label: 'tensorpeft' });
        prog.dispatches.forEach((x, i) => {
          const pipe = this.pipelines[x.kernel === 'gemm' && this.gemmKernel === 'simple' ? 'gemm_simple' : x.kernel];
          pass.setPipeline(pipe);
          pass.setBindGroup(
            0,
            d.createBindGroup({
              layout: pipe.getBindGroupLayout(0),
              entries: [
                { binding: 0, resource: { buffer: heap } },
                { binding: 1, resource: { buffer: pbuf, offset: i * SLOT_BYTES, size: SLOT_BYTES } },
              ],
            }),
          );
          pass.dispatchWorkgroups(...x.groups);
        });
        pass.end();
      }
      if (half && target.kind === 'gpu') this.encodeHalf(enc, half, heap, pbuf, nd, outputs, target.buffers);
      let pos = 0;
      outputs.forEach(([off, len], i) => {
        if (len === 0 || half) return;
        if (staging) enc.copyBufferToBuffer(heap, off * 4, staging, pos * 4, len * 4);
        else if (target.kind === 'gpu') enc.copyBufferToBuffer(heap, off * 4, target.buffers[i]!, 0, len * 4);
        pos += len;
      });
      d.queue.submit([enc.finish()]);
      scopes = 0;
      const [verr, oerr] = await this.guard(Promise.all([d.popErrorScope(), d.popErrorScope()]));
      const err = verr ?? oerr;
      if (err) throw new WebGpuKernelError(`the GPU rejected a kernel call (${err.constructor.name})`, { found: err.message });
      if (staging) {
        await this.guard(staging.mapAsync(MAP_MODE_READ, 0, Math.max(4, total * 4)));
        readback = new Float32Array(staging.getMappedRange(0, Math.max(4, total * 4)).slice(0, total * 4));
        staging.unmap();
      } else {
        // Results stay on the GPU; wait for the queue so errors surface here, not later.
        await this.guard(d.queue.onSubmittedWorkDone());
      }
    } catch (e) {
      for (; scopes > 0; scopes--) d.popErrorScope().catch(() => {});
      throw await this.wrap(e);
    } finally {
      pool.release(heap);
      pool.release(pbuf);
      if (staging && staging.mapState === 'unmapped') pool.release(staging);
    }
    if (!readback) return [];
    const out: Float32Array[] = [];
    let pos = 0;
    for (const [, len] of outputs) {
      out.push(readback.slice(pos, pos + len));
      pos += len;
    }
    return out;
  }

  /** One dispatch per output: heap region (float32) → binary16 in `buffers[i]`. */
  private encodeHalf(enc: GPUCommandEncoder, pipe: GPUComputePipeline, heap: GPUBuffer, pbuf: GPUBuffer, nd: number, outputs: Array<[number, number]>, buffers: GPUBuffer[]): void {
    const pass = enc.beginComputePass({ label: 'tensorpeft-half' });
    pass.setPipeline(pipe);
    outputs.forEach(([, len], i) => {
      const groups = Math.ceil(halfInvocations(this.halfKernel, len) / EW);
      if (groups === 0) return;
      const gx = Math.min(groups, 65535);
      const gy = Math.ceil(groups / gx);
      if (gy > 65535) throw new WebGpuKernelError('problem too large for one dispatch', { expected: '≤ 65535 workgroups per dimension', found: [gx, gy, 1] });
      pass.setBindGroup(
        0,
        this.device.createBindGroup({
          layout: pipe.getBindGroupLayout(0),
          entries: [
            { binding: 0, resource: { buffer: heap } },
            { binding: 1, resource: { buffer: pbuf, offset: (nd + i) * SLOT_BYTES, size: SLOT_BYTES } },
            { binding: 2, resource: { buffer: buffers[i]! } },
          ],
        }),
      );
      pass.dispatchWorkgroups(gx, gy, 1);
    });
    pass.end();
  }

  /** Errors from a failed submission: device loss wins (it explains everything else). */
  private async wrap(e: unknown): Promise<Error> {
    if (e instanceof WebGpuDeviceLostError) return e;
    // A destroyed/lost device rejects mapAsync before `lost` resolves: give it a moment.
    if (!this.isLost) await new Promise((r) => setTimeout(r, 50));
    if (this.isLost) return this.lostError();
    if (e instanceof TensorPeftError) return e;
    return new WebGpuKernelError('a WebGPU call failed', { found: (e as Error)?.message ?? String(e) });
  }

  // -------------------------------------------------------------------------------------------
  // Backend interface

  async evaluate(expr: MatExpr): Promise<Float32Array> {
    const prog = new Program();
    const len = Program.exprLength(expr);
    const dst = prog.alloc(len);
    prog.expr(expr, dst);
    return (await this.run(prog, [[dst, len]]))[0]!;
  }

  /** Every module of an adapter in one submission (one upload, one read-back). */
  async materialize(jobs: readonly MaterializeJob[]): Promise<ModuleUpdate[]> {
    jobs.forEach(checkJob);
    const prog = new Program();
    const outs: Array<[number, number]> = [];
    for (const j of jobs) {
      const a = prog.alloc(j.n * j.rho);
      const b = prog.alloc(j.m * j.rho);
      prog.expr(j.a, a);
      prog.expr(j.b, b);
      outs.push([a, j.n * j.rho], [b, j.m * j.rho]);
    }
    const res = await this.run(prog, outs);
    return jobs.map((j, i) => ({ path: j.path, n: j.n, m: j.m, rho: j.rho, s: j.s, A: res[2 * i]!, B: res[2 * i + 1]! }));
  }

  async merge(W: Float32Array, layout: WeightLayout, u: ModuleUpdate): Promise<void> {
    checkUpdate(u);
    if (W.length !== u.n * u.m) throw new ShapeMismatchError(`weight of ${u.path}`, { expected: [u.m, u.n], found: W.length });
    const prog = new Program();
    const w = prog.input(W);
    prog.merge(w, layout, u, prog.input(u.A), prog.input(u.B));
    W.set((await this.run(prog, [[w, W.length]]))[0]!);
  }

  async apply(X: Float32Array, Y: Float32Array, rows: number, u: ModuleUpdate): Promise<void> {
    checkUpdate(u);
    if (X.length !== rows * u.n) throw new ShapeMismatchError('branch input X', { expected: [rows, u.n], found: X.length });
    if (Y.length !== rows * u.m) throw new ShapeMismatchError('branch output Y', { expected: [rows, u.m], found: Y.length });
    const prog = new Program();
    const y = prog.input(Y);
    prog.apply(prog.input(X), y, rows, u, prog.input(u.A), prog.input(u.B));
    Y.set((await this.run(prog, [[y, Y.length]]))[0]!);
  }

  // -------------------------------------------------------------------------------------------
  // GPU-resident extras

  /**
   * Materialize every module into GPUBuffers on this backend's device, in one submission, with no
   * read-back: feed them to ONNX Runtime Web's WebGPU EP (same device) as
   * `Tensor.fromGpuBuffer(u.A, { dataType: 'float32', dims: [u.n, u.rho] })`. Call `release()` on
   * each result when the adapter is swapped out (the buffers go back to the pool).
   */
  async materializeToGpu(jobs: readonly MaterializeJob[], opts: GpuMaterializeOptions = {}): Promise<GpuModuleUpdate[]> {
    jobs.forEach(checkJob);
    const prog = new Program();
    const outs: Array<[number, number]> = [];
    for (const j of jobs) {
      const a = prog.alloc(j.n * j.rho);
      prog.expr(j.a, a);
      const lb = j.m * j.rho;
      let b = prog.alloc(lb);
      if (opts.foldScale || opts.transposeB) {
        const raw = prog.alloc(lb);
        prog.expr(j.b, raw);
        if (opts.transposeB) prog.gather(j.rho, j.m, raw, 1, j.rho, b, undefined, undefined, opts.foldScale ? j.s : undefined);
        else prog.gather(j.m, j.rho, raw, j.rho, 1, b, undefined, undefined, j.s);
      } else {
        prog.expr(j.b, b);
      }
      outs.push([a, j.n * j.rho], [b, lb]);
    }
    this.alive();
    const usage = STORAGE | COPY_SRC | COPY_DST;
    const half = opts.dtype === 'float16';
    const buffers = outs.map(([, len]) => this.pool.acquire(half ? halfBufferBytes(len) : len * 4, usage, true));
    try {
      await this.run(prog, outs, { kind: 'gpu', buffers, half });
    } catch (e) {
      buffers.forEach((b) => this.pool.release(b));
      throw e;
    }
    return jobs.map((j, i) => {
      const A = buffers[2 * i]!;
      const B = buffers[2 * i + 1]!;
      let released = false;
      return {
        path: j.path,
        n: j.n,
        m: j.m,
        rho: j.rho,
        s: opts.foldScale ? 1 : j.s,
        dtype: half ? 'float16' : 'float32',
        A,
        B,
        bLayout: opts.transposeB ? 'rho_m' : 'm_rho',
        release: () => {
          if (released) return;
          released = true;
          this.pool.release(A);
          this.pool.release(B);
        },
      };
    });
  }

  /**
   * `W += s·B′A′ᵀ` with W a GPUBuffer on this device (STORAGE | COPY_SRC | COPY_DST, `[m, n]` or
   * `[n, m]` float32) and A′/B′ GPU-resident results of `materializeToGpu` (default layout, s not
   * folded) or CPU arrays. No CPU copy of W.
   */
  async mergeOnGpu(W: GPUBuffer, layout: WeightLayout, u: GpuModuleUpdate | ModuleUpdate): Promise<void> {
    const len = u.n * u.m;
    if (W.size < len * 4) throw new ShapeMismatchError(`weight buffer of ${u.path}`, { expected: `≥ ${len * 4} bytes`, found: W.size });
    const prog = new Program();
    const w = prog.inputGpu(W, len);
    let A: number;
    let B: number;
    if (u.A instanceof Float32Array) {
      checkUpdate(u as ModuleUpdate);
      A = prog.input(u.A);
      B = prog.input(u.B as Float32Array);
    } else {
      const g = u as GpuModuleUpdate;
      if (g.dtype === 'float16') throw new ShapeMismatchError(`A′/B′ of ${u.path} for a float32 merge`, { expected: 'float32 buffers', found: 'float16' });
      if (g.bLayout !== 'm_rho') throw new ShapeMismatchError(`B′ of ${u.path} layout for merge`, { expected: 'm_rho', found: g.bLayout });
      A = prog.inputGpu(g.A, u.n * u.rho);
      B = prog.inputGpu(g.B, u.m * u.rho);
    }
    prog.merge(w, layout, { ...u, A: new Float32Array(0), B: new Float32Array(0) } as ModuleUpdate, A, B);
    await this.run(prog, [[w, len]], { kind: 'gpu', buffers: [W] });
  }

  /** Read `length` binary16 values (as their bits) of a float16 result buffer (tests, debugging). */
  async readHalfBuffer(buffer: GPUBuffer, length: number): Promise<Uint16Array> {
    const words = await this.readBuffer(buffer, Math.ceil(length / 2));
    return new Uint16Array(words.buffer, words.byteOffset, length);
  }

  /** Read `length` floats of a GPUBuffer of this device (tests, debugging). */
  async readBuffer(buffer: GPUBuffer, length: number): Promise<Float32Array> {
    const prog = new Program();
    const off = prog.inputGpu(buffer, length);
    return (await this.run(prog, [[off, length]]))[0]!;
  }
}

/** `WebGpuBackend.create` as a function (for core's registry). */
export const createWebGpuBackend = (opts?: WebGpuBackendOptions): Promise<WebGpuBackend> => WebGpuBackend.create(opts);
