/**
 * Load-speed rows of `bench plugin` (issue 16): session creation plain vs through the plugin without
 * the rewrite cache (first load: spliced rewrite) and with a warm one (Node: the cached file's path
 * handed to ORT), paired per round; and the rewrite alone vs model bytes at a fixed graph (one tiny
 * model's nodes, weight bytes grown by a padding initializer).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import { from_pretrained } from './plugin.js';
import { decodeModel, rewriteModel } from './rewrite.js';
import { joinParts, rewriteParts } from './proto-splice.js';
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
  const load0 = loadavg()[0]!;
  try {
    // Fill the cache (and the OS file cache) once.
    await dispose(await from_pretrained(env, Auto as never, id, { dtype: 'fp32', rewrite_cache: cacheDir }));
    const t = { plain: [] as number[], first: [] as number[], cold: [] as number[], cached: [] as number[] };
    const kinds = ['plain', 'first', 'cold', 'cached'] as const;
    for (let r = 0; r < rounds; r++) {
      // Rotated order: no configuration always runs first (or right after a GC of another's buffers).
      for (let j = 0; j < kinds.length; j++) {
        const k = kinds[(j + r) % kinds.length]!;
        // cold: an empty cache folder each time (the miss path: hash + rewrite file to file in Node).
        const cold = k === 'cold' ? await mkdtemp(path.join(tmpdir(), 'tp-bench-rwcold-')) : undefined;
        const t0 = performance.now();
        const m = k === 'plain' ? await Auto.from_pretrained(id, { dtype: 'fp32' }) : await from_pretrained(env, Auto as never, id, { dtype: 'fp32', ...(k === 'cached' ? { rewrite_cache: cacheDir } : cold ? { rewrite_cache: cold } : {}) });
        t[k].push(performance.now() - t0);
        await dispose(m);
        if (cold) await rm(cold, { recursive: true, force: true });
      }
    }
    const ratio = (k: 'first' | 'cold' | 'cached') => t[k].map((x, i) => x / t.plain[i]!);
    const loadNote = `load average ${load0.toFixed(2)} → ${loadavg()[0]!.toFixed(2)}; ${rounds} rounds`;
    return [
      { bench: 'load: plain transformers.js from_pretrained', shape: dims, ms: median(t.plain), note: `spread ${spread(t.plain)} ms; ${loadNote}` },
      { bench: 'load: plugin, first load (spliced rewrite, branch mode)', shape: dims, ms: median(t.first), ratio: median(ratio('first')), note: `ratio to plain (spread ${spread(ratio('first'))}); no rewrite_cache given (Node: from_pretrained uses a temporary one for the load: file to file, path to ORT); ${loadNote}` },
      { bench: 'load: plugin, first load into an empty rewrite_cache', shape: dims, ms: median(t.cold), ratio: median(ratio('cold')), note: `ratio to plain (spread ${spread(ratio('cold'))}); Node: streamed hash + rewrite file to file, path to ORT; ${loadNote}` },
      {
        bench: 'load: plugin, cached rewrite (rewrite_cache)',
        shape: dims,
        ms: median(t.cached),
        ratio: median(ratio('cached')),
        note: `ratio to plain (spread ${spread(ratio('cached'))}); model hash by file identity, cached file's path handed to ORT; ${loadNote}`,
      },
    ];
  } finally {
    await rm(cacheDir, { recursive: true, force: true });
  }
}

/**
 * The rewrite alone of one graph with its weight bytes grown to each of `padBytes` (a padding float
 * initializer): the spliced rewrite to parts (proto-splice.ts: what grows with the graph), the same
 * joined into one buffer (the one copy of the weights left), and — up to `fullUpTo` bytes, it is
 * slow — the full decode/rewrite/encode path for contrast. Time per MB shows what grows with bytes.
 */
export function rewriteScalingRows(baseModel: Uint8Array, targets: string[], padBytes: number[], repeats: number, fullUpTo = 64 * 2 ** 20): Promise<PluginBenchRow[]> {
  return (async () => {
    const rows: PluginBenchRow[] = [];
    const nodes = decodeModel(baseModel).graph?.node?.length ?? 0;
    const timed = (f: () => unknown): number[] => {
      const ts: number[] = [];
      for (let i = 0; i < repeats; i++) {
        const t0 = performance.now();
        f();
        ts.push(performance.now() - t0);
      }
      return ts;
    };
    for (const pad of padBytes) {
      let bytes: Uint8Array | undefined = paddedModel(baseModel, pad);
      const b = bytes;
      const mb = b.length / 2 ** 20;
      const shape = `${nodes} nodes, ${mb.toFixed(1)} MB model`;
      const parts = timed(() => rewriteParts(b, { targets }));
      // The join allocates a model-sized buffer per repeat: measured up to `fullUpTo` × 4 only.
      const joined = b.length <= 4 * fullUpTo ? timed(() => joinParts(rewriteParts(b, { targets }))) : [];
      const perMb = (t: number[]) => `${(median(t) / mb).toFixed(3)} ms/MB`;
      rows.push({ bench: 'rewrite alone: spliced (scan + rewrite + encode to parts)', shape, ms: median(parts), bytes: b.length, note: `${perMb(parts)}; spread ${spread(parts)} ms; ${repeats} repeats` });
      if (joined.length) rows.push({ bench: 'rewrite alone: spliced + joined into one buffer', shape, ms: median(joined), bytes: b.length, note: `${perMb(joined)}; spread ${spread(joined)} ms; the join is one fresh model-sized buffer` });
      if (b.length <= fullUpTo) {
        const full = timed(() => rewriteModel(decodeModel(b), { targets, mode: 'branch' }));
        rows.push({ bench: 'rewrite alone: full decode + rewrite + encode (before issue 16)', shape, ms: median(full), bytes: b.length, ratio: median(full) / median(parts), note: `${perMb(full)}; ratio ÷ spliced to parts` });
      }
      bytes = undefined;
    }
    return rows;
  })();
}

/** `baseModel` with one more float initializer of about `pad` bytes (raw_data). */
function paddedModel(baseModel: Uint8Array, pad: number): Uint8Array {
  const m = onnx.ModelProto.decode(baseModel);
  const floats = Math.max(1, Math.floor(pad / 4));
  m.graph!.initializer!.push(onnx.TensorProto.create({ name: 'bench.pad', dataType: onnx.TensorProto.DataType.FLOAT, dims: [floats], rawData: new Uint8Array(floats * 4).fill(1) }));
  return onnx.ModelProto.encode(m).finish();
}
