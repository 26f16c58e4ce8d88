/**
 * Load-speed rows of `bench plugin` (issue 16): session creation plain vs through the plugin with
 * the rewrite cache cold (first load) and warm (cached), paired per round; and the rewrite alone vs
 * model bytes at a fixed graph (one tiny model's nodes, weight bytes grown by a padding
 * initializer), uncached and through the rewrite cache.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import { from_pretrained } from './plugin.js';
import { decodeModel, rewriteModel } from './rewrite.js';
import { cachedRewrite, type RewriteStore } from './rewrite-cache.js';
import type { PluginBenchRow } from './bench.js';
import type { CacheEnv } from './cache.js';

const { onnx } = onnxProto;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

const spread = (xs: number[]): string => `${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)}`;

type Loader = { from_pretrained(id: string, o: Record<string, unknown>): Promise<unknown> };
const dispose = (m: unknown) => (m as { dispose(): Promise<unknown> }).dispose();

/**
 * Plain `from_pretrained` vs the plugin's (rewrite cache off: every load rewrites) vs the plugin's
 * with a warm rewrite cache, in rounds; ratios are medians of per-round ratios to the plain load.
 */
export async function loadRatioRows(env: CacheEnv, Auto: Loader, id: string, dims: string, rounds: number): Promise<PluginBenchRow[]> {
  const cacheDir = await mkdtemp(path.join(tmpdir(), 'tp-bench-rwcache-'));
  try {
    // Fill the cache (and the OS file cache) once.
    await dispose(await from_pretrained(env, Auto as never, id, { dtype: 'fp32', rewrite_cache: cacheDir }));
    const t = { plain: [] as number[], first: [] as number[], cached: [] as number[] };
    for (let r = 0; r < rounds; r++) {
      for (const k of ['plain', 'first', 'cached'] as const) {
        const t0 = performance.now();
        const m = k === 'plain' ? await Auto.from_pretrained(id, { dtype: 'fp32' }) : await from_pretrained(env, Auto as never, id, { dtype: 'fp32', ...(k === 'cached' ? { rewrite_cache: cacheDir } : {}) });
        t[k].push(performance.now() - t0);
        await dispose(m);
      }
    }
    const ratio = (k: 'first' | 'cached') => t[k].map((x, i) => x / t.plain[i]!);
    return [
      { bench: 'load: plain transformers.js from_pretrained', shape: dims, ms: median(t.plain), note: `${rounds} rounds` },
      { bench: 'load: plugin, first load (rewrite, branch mode)', shape: dims, ms: median(t.first), ratio: median(ratio('first')), note: `ratio to plain (spread ${spread(ratio('first'))})` },
      { bench: 'load: plugin, cached rewrite (rewrite_cache)', shape: dims, ms: median(t.cached), ratio: median(ratio('cached')), note: `ratio to plain (spread ${spread(ratio('cached'))}); SHA-256 of the model + entry check` },
    ];
  } finally {
    await rm(cacheDir, { recursive: true, force: true });
  }
}

/** An in-memory rewrite store (the rewrite-time rows measure hashing, not the disk). */
function memoryStore(): RewriteStore {
  const m = new Map<string, { bytes: Uint8Array; meta: Parameters<RewriteStore['put']>[2] }>();
  return {
    get: async (k) => m.get(k),
    put: async (k, bytes, meta) => void m.set(k, { bytes, meta }),
  };
}

/**
 * The rewrite alone (decode + rewrite + encode) of one graph with its weight bytes grown to each of
 * `padBytes` (a padding float initializer), and the same through the rewrite cache (hit: SHA-256 of
 * the model and of the stored rewrite). Time per MB shows whether it grows with the bytes.
 */
export function rewriteScalingRows(baseModel: Uint8Array, targets: string[], padBytes: number[], repeats: number): Promise<PluginBenchRow[]> {
  return (async () => {
    const rows: PluginBenchRow[] = [];
    const nodes = decodeModel(baseModel).graph?.node?.length ?? 0;
    for (const pad of padBytes) {
      const m = onnx.ModelProto.decode(baseModel);
      const floats = Math.max(1, Math.floor(pad / 4));
      m.graph!.initializer!.push(onnx.TensorProto.create({ name: 'bench.pad', dataType: onnx.TensorProto.DataType.FLOAT, dims: [floats], rawData: new Uint8Array(floats * 4).fill(1) }));
      const bytes = onnx.ModelProto.encode(m).finish();
      const times: number[] = [];
      for (let i = 0; i < repeats; i++) {
        const t0 = performance.now();
        rewriteModel(decodeModel(bytes), { targets, mode: 'branch' });
        times.push(performance.now() - t0);
      }
      const store = memoryStore();
      await cachedRewrite(store, bytes, targets, 'branch', () => rewriteModel(decodeModel(bytes), { targets, mode: 'branch' }));
      const hits: number[] = [];
      for (let i = 0; i < repeats; i++) {
        const t0 = performance.now();
        const r = await cachedRewrite(store, bytes, targets, 'branch', () => {
          throw new Error('expected a cache hit');
        });
        hits.push(performance.now() - t0);
        if (!r.cached) throw new Error('expected a cache hit');
      }
      const mb = bytes.length / 2 ** 20;
      const shape = `${nodes} nodes, ${mb.toFixed(1)} MB model`;
      rows.push({ bench: 'rewrite alone (decode + rewrite + encode)', shape, ms: median(times), bytes: bytes.length, note: `${(median(times) / mb).toFixed(2)} ms/MB; ${repeats} repeats` });
      rows.push({ bench: 'rewrite through the cache (hit: SHA-256 of the model + entry check)', shape, ms: median(hits), bytes: bytes.length, ratio: median(hits) / median(times), note: `ratio to the rewrite; ${(median(hits) / mb).toFixed(2)} ms/MB` });
    }
    return rows;
  })();
}
