/**
 * Worker threads for the kernels. Each worker instantiates the threaded build
 * (`kernels-mt.wasm`) on the main thread's shared `WebAssembly.Memory`, so a batched
 * materialization is split into lanes (src/program.ts) that run at the same time: lane 0 on the
 * calling thread, lane i on worker i. Inputs are written once and outputs read once, by the main
 * thread; only two small messages per worker cross threads per call.
 *
 * Availability: SharedArrayBuffer, module workers, and in browsers cross-origin isolation
 * (COOP/COEP headers). When any of it is missing, or a worker fails, the backend runs every lane
 * on the calling thread — same results, one core.
 */
import { WasmLoadError } from './errors.js';

/** Where the worker script lives, relative to this module. */
export const DEFAULT_WORKER_URL: URL = new URL('./kernels-worker.js', import.meta.url);

interface Port {
  post(msg: unknown): void;
  onMessage(cb: (msg: any) => void): void;
  onFailure(cb: (why: string) => void): void;
  ref(): void;
  unref(): void;
  terminate(): void;
}

const isNode = typeof process !== 'undefined' && typeof process.versions?.node === 'string' && typeof (globalThis as { window?: unknown }).window === 'undefined';

async function spawn(url: URL): Promise<Port> {
  if (isNode) {
    const name = 'node:worker_threads';
    const { Worker } = (await import(/* @vite-ignore */ /* webpackIgnore: true */ name)) as typeof import('node:worker_threads');
    const w = new Worker(url);
    return {
      post: (m) => w.postMessage(m),
      onMessage: (cb) => w.on('message', cb),
      onFailure: (cb) => {
        w.on('error', (e) => cb(e.message));
        w.on('exit', (code) => cb(`worker exited with code ${code}`));
      },
      ref: () => w.ref(),
      unref: () => w.unref(),
      terminate: () => void w.terminate(),
    };
  }
  const w = new Worker(url, { type: 'module' });
  return {
    post: (m) => w.postMessage(m),
    onMessage: (cb) => w.addEventListener('message', (e) => cb(e.data)),
    onFailure: (cb) => w.addEventListener('error', (e) => cb(e.message || 'worker error')),
    ref: () => {},
    unref: () => {},
    terminate: () => w.terminate(),
  };
}

/** Threads this environment can use for wasm (1 = none): shared memory, workers, isolation. */
export async function availableThreads(): Promise<number> {
  if (typeof SharedArrayBuffer === 'undefined') return 1;
  let hw: number;
  if (isNode) {
    const name = 'node:os';
    const os = (await import(/* @vite-ignore */ /* webpackIgnore: true */ name)) as typeof import('node:os');
    hw = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  } else {
    if ((globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated !== true || typeof Worker === 'undefined') return 1;
    hw = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? 1;
  }
  return Math.max(1, Math.min(4, hw));
}

/** A lane's result: 0 and its outputs, or a failure (negative word index, trap or worker message). */
export interface LaneResult {
  status: number | string;
  outs: Float32Array[];
}

interface Slot {
  port: Port;
  pending?: { resolve: (r: LaneResult) => void };
}

export class ThreadPool {
  private broken: string | undefined;
  private nextId = 1;

  private constructor(private readonly slots: Slot[]) {}

  /** Start `workers` workers on `memory`; rejects (WasmLoadError) when any cannot start. */
  static async create(module: WebAssembly.Module, memory: WebAssembly.Memory, workers: number, url: URL = DEFAULT_WORKER_URL, timeoutMs = 20_000): Promise<ThreadPool> {
    const slots: Slot[] = [];
    const pool = new ThreadPool(slots);
    try {
      await Promise.all(
        Array.from({ length: workers }, async () => {
          const port = await spawn(url);
          const slot: Slot = { port };
          slots.push(slot);
          await new Promise<void>((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
            port.onMessage((m) => {
              if (m.type === 'ready') {
                clearTimeout(timer);
                resolve();
              } else if (m.type === 'error') {
                clearTimeout(timer);
                reject(new Error(m.message));
              } else if (m.type === 'done') {
                const p = slot.pending;
                slot.pending = undefined;
                if (slots.every((s) => !s.pending)) for (const s of slots) s.port.unref();
                p?.resolve({ status: m.status, outs: m.outs ?? [] });
              }
            });
            port.onFailure((why) => {
              clearTimeout(timer);
              pool.fail(why);
              reject(new Error(why));
            });
            port.post({ type: 'init', module, memory });
          });
          port.unref();
        }),
      );
    } catch (e) {
      pool.terminate();
      throw new WasmLoadError('wasm worker threads could not start', { file: url.href, found: (e as Error).message });
    }
    return pool;
  }

  get size(): number {
    return this.slots.length;
  }

  get healthy(): boolean {
    return this.broken === undefined;
  }

  private fail(why: string): void {
    this.broken ??= why;
    for (const s of this.slots) {
      const p = s.pending;
      s.pending = undefined;
      p?.resolve({ status: `worker failed: ${why}`, outs: [] });
    }
  }

  /**
   * Run lane programs [byte offset, word count] on workers 0, 1, …; each worker then copies the
   * lane's outputs ([byte offset, float count]) out of shared memory and transfers them back.
   */
  run(lanes: ReadonlyArray<readonly [number, number]>, outputs: ReadonlyArray<ReadonlyArray<readonly [number, number]>>): Promise<LaneResult[]> {
    if (this.broken !== undefined) return Promise.resolve(lanes.map(() => ({ status: `worker failed: ${this.broken}`, outs: [] })));
    return Promise.all(
      lanes.map(([at, len], i) => {
        const slot = this.slots[i]!;
        return new Promise<LaneResult>((resolve) => {
          slot.pending = { resolve };
          slot.port.ref();
          slot.port.post({ type: 'run', id: this.nextId++, at, len, outs: outputs[i] ?? [] });
        });
      }),
    );
  }

  terminate(): void {
    this.fail('terminated');
    for (const s of this.slots) s.port.terminate();
  }
}
