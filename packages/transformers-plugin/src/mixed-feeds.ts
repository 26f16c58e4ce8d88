/**
 * Mixed-adapter batches, feed side (issue 16; the graph side is mixed-rewrite.ts): what a session
 * rewritten with `mixedBatches` is fed.
 *
 * - Ordinary runs (one adapter for the whole batch, or none): each adapter's own tensors as a
 *   one-slot stack (`[1, n, ρ]`, a view: no copy) and `rows = [0]`, so `set_adapter`, `{ adapter }`
 *   and `with_adapter` work as on a plain branch rewrite.
 * - `adapter_names: ['a', 'b', null, …]` (PEFT's word; one per batch row): the distinct adapters
 *   of the call get slots 1…k of per-module stacks `A [k+1, n, ρmax]`, `B [k+1, ρmax, m]` (slot 0
 *   zeros, smaller ranks zero-padded: exact), head overrides `[k+1, …dims]` with a bool mask per
 *   head, and `rows` the slot of each row. Stacks are built once per set of adapters and kept (a
 *   small LRU) while those adapters are unchanged; per call only `rows` (one int64 per row) is new.
 *
 * Stacks are built on the CPU from the adapters' CPU feeds (GPU-fed adapters are refused: load
 * them with `{ gpu: null }`); on WebGPU ORT uploads them per run.
 */
import { Tensor } from '@huggingface/transformers';
import { PluginError } from './errors.js';
import { MIXED_HEAD_PREFIX, MIXED_ROWS, SLOTS_DIM } from './mixed-rewrite.js';
import type { Feeds, HookedSession, OrtTensor } from './ort-feeds.js';
import type { AdapterRegistry, Entry } from './registry.js';

/** A mixed-batch call the model cannot run: unknown adapter, wrong row count, too many adapters, GPU-fed adapter. */
export class MixedBatchError extends PluginError {
  override name = 'MixedBatchError';
  override readonly code: string = 'MIXED_BATCH';
}

/** Default most distinct adapters one mixed call may use (`mixed_batches: { max_adapters }`). */
export const DEFAULT_MAX_ADAPTERS = 8;

interface OrtLike {
  dims: readonly number[];
  type: string;
  data: unknown;
  location?: string;
  reshape(dims: readonly number[]): OrtLike;
}

/** Per hooked session of a mixed rewrite: each head weight input → its mask input. */
const LAYOUTS = new WeakMap<HookedSession, { masks: Map<string, string>; rows: Set<string> }>();

function ort(type: 'int64' | 'bool' | 'float32', data: BigInt64Array | Uint8Array | Float32Array, dims: number[]): OrtTensor {
  return (new Tensor(type, data, dims) as unknown as { ort_tensor: OrtTensor }).ort_tensor;
}

const ROW0 = (): OrtTensor => ort('int64', new BigInt64Array(1), [1]);
let TRUE: OrtTensor | undefined;
let FALSE: OrtTensor | undefined;
const maskTensor = (v: boolean): OrtTensor => (v ? (TRUE ??= ort('bool', new Uint8Array([1]), [1])) : (FALSE ??= ort('bool', new Uint8Array([0]), [1])));

/** Whether head parameter `input` is gathered per row (the others: fp16 graphs' whole-batch heads). */
function perRow(layout: { rows: Set<string> }, input: string): boolean {
  return layout.rows.has(input);
}

/** Whether `h` was rewritten for mixed batches. */
export function isMixedSession(h: HookedSession): boolean {
  return LAYOUTS.has(h);
}

/** A 2-D branch tensor as a one-slot stack (a view). */
function oneSlot(t: OrtTensor): OrtTensor {
  const o = t as OrtLike;
  return o.dims.length === 2 ? o.reshape([1, ...o.dims]) : t;
}

/**
 * Called by the registry when it hooks a session (`ours`: its `tensorpeft.*` input names): for a
 * mixed rewrite, turn the base feeds into one-slot stacks (heads: one zero slot, mask false) and add
 * `rows = [0]`. No-op for other sessions.
 */
export function initMixedSession(h: HookedSession, ours: readonly string[]): void {
  if (!ours.includes(MIXED_ROWS)) return;
  const masks = new Map<string, string>();
  for (const p of h.params) {
    const mask = `${MIXED_HEAD_PREFIX}${p.input}`;
    if (ours.includes(mask)) masks.set(p.input, mask);
  }
  // Head parameters gathered per row (weights and their biases) have a slot dimension first.
  const meta = new Map((h.session.inputMetadata ?? []).map((m) => [m.name, m.shape ?? []]));
  const rows = new Set(h.params.filter((p) => meta.get(p.input)?.[0] === SLOTS_DIM).map((p) => p.input));
  const layout = { masks, rows };
  LAYOUTS.set(h, layout);
  const f = h.baseFeeds;
  for (const mod of h.modules) {
    if (mod.inputA === undefined || mod.inputB === undefined) throw new PluginError(`mixed batches need branch mode (module ${mod.path} is merged)`);
    f[mod.inputA] = oneSlot(f[mod.inputA]);
    f[mod.inputB] = oneSlot(f[mod.inputB]);
  }
  // A slot must exist for Gather: the base feeds one zero slot, and the mask keeps the base head.
  // (Heads without a mask, fp16 graphs' correction form, are fed as on a plain rewrite.)
  for (const p of h.params) if (perRow(layout, p.input)) f[p.input] = ort('float32', new Float32Array(p.dims.reduce((a, d) => a * d, 1)), [1, ...p.dims]);
  for (const mask of masks.values()) f[mask] = maskTensor(false);
  f[MIXED_ROWS] = ROW0();
}

/**
 * Called by the registry on an adapter's feeds for `h` (after building or rescaling them): in a
 * mixed session, branch tensors become one-slot stacks and each head's mask says whether the
 * adapter replaces it. No-op for other sessions.
 */
export function adaptMixedFeeds(h: HookedSession, feeds: Feeds): void {
  const layout = LAYOUTS.get(h);
  if (!layout) return;
  for (const mod of h.modules) {
    feeds[mod.inputA!] = oneSlot(feeds[mod.inputA!]);
    feeds[mod.inputB!] = oneSlot(feeds[mod.inputB!]);
  }
  for (const [input, mask] of layout.masks) feeds[mask] = maskTensor(feeds[input] !== h.baseFeeds[input]);
}

function cpuFloats(t: OrtTensor, adapter: string, input: string): { data: Float32Array; dims: readonly number[] } {
  const o = t as OrtLike;
  if (o.location !== undefined && o.location !== 'cpu') {
    throw new MixedBatchError(`adapter "${adapter}" is GPU-fed (${input} is a GPU buffer): mixed batches stack CPU feeds; load it with { gpu: null }`);
  }
  return { data: o.data as Float32Array, dims: o.dims };
}

/** Stacked feeds of one session for adapters `srcs` (slots 1…k; slot 0 = none). */
function stackSession(h: HookedSession, srcs: ReadonlyArray<{ name: string; feeds: Feeds }>, webgpu: boolean): Feeds {
  const layout = LAYOUTS.get(h)!;
  const S = srcs.length + 1;
  const out: Feeds = { ...h.baseFeeds };
  for (const mod of h.modules) {
    const { n, m } = mod;
    const As = srcs.map((s) => cpuFloats(s.feeds[mod.inputA!], s.name, mod.inputA!));
    const Bs = srcs.map((s) => cpuFloats(s.feeds[mod.inputB!], s.name, mod.inputB!));
    // WebGPU cannot bind empty tensors: keep one (zero) rank column there.
    const rmax = Math.max(webgpu ? 1 : 0, ...As.map((a) => a.dims[a.dims.length - 1]!));
    const A = new Float32Array(S * n * rmax);
    const B = new Float32Array(S * rmax * m);
    As.forEach((a, i) => {
      const r = a.dims[a.dims.length - 1]!;
      const base = (i + 1) * n * rmax;
      // A′ [n, r] into [n, rmax]: the padded columns stay zero.
      for (let row = 0; row < n; row++) A.set(a.data.subarray(row * r, row * r + r), base + row * rmax);
      // s·B′ᵀ [r, m]: the first r rows of the slot's [rmax, m].
      B.set(Bs[i]!.data.subarray(0, r * m), (i + 1) * rmax * m);
    });
    out[mod.inputA!] = ort('float32', A, [S, n, rmax]);
    out[mod.inputB!] = ort('float32', B, [S, rmax, m]);
  }
  for (const p of h.params) {
    if (!perRow(layout, p.input)) {
      const by = srcs.find((s) => s.feeds[p.input] !== h.baseFeeds[p.input]);
      if (by) throw new MixedBatchError(`adapter "${by.name}" replaces head parameter ${p.name}, which this model (an fp16 graph) can replace for a whole batch only: run its rows with { adapter: "${by.name}" }`);
      continue;
    }
    const size = p.dims.reduce((a, d) => a * d, 1);
    const W = new Float32Array(S * size);
    srcs.forEach((s, i) => {
      // Replaced heads only; the others stay zero (and their mask false).
      if (s.feeds[p.input] !== h.baseFeeds[p.input]) W.set(cpuFloats(s.feeds[p.input], s.name, p.input).data.subarray(0, size), (i + 1) * size);
    });
    out[p.input] = ort('float32', W, [S, ...p.dims]);
  }
  for (const mask of layout.masks.values()) {
    const M = new Uint8Array(S);
    srcs.forEach((s, i) => (M[i + 1] = ((s.feeds[mask] as OrtLike).data as Uint8Array)[0]!));
    out[mask] = ort('bool', M, [S]);
  }
  return out;
}

interface Stacked {
  sources: Array<{ entry: Entry; scale: number; feeds: Feeds[] | null }>;
  stacks: Feeds[];
}

interface MixedState {
  maxAdapters: number;
  webgpu: boolean;
  /** Stacks by sorted adapter names, most recently used last. */
  cache: Map<string, Stacked>;
}

const STATES = new WeakMap<AdapterRegistry, MixedState>();
const CACHED_SETS = 4;

/** `attachAdapters`' `mixed_batches` option. */
export function configureMixed(reg: AdapterRegistry, opts: { max_adapters?: number } | undefined, webgpu: boolean): void {
  const max = opts?.max_adapters ?? STATES.get(reg)?.maxAdapters ?? DEFAULT_MAX_ADAPTERS;
  if (!Number.isInteger(max) || max < 1) throw new MixedBatchError(`mixed_batches.max_adapters must be a positive integer, got ${String(max)}`);
  const st = STATES.get(reg);
  if (st) st.maxAdapters = max;
  else STATES.set(reg, { maxAdapters: max, webgpu, cache: new Map() });
}

function stateOf(reg: AdapterRegistry): MixedState {
  let st = STATES.get(reg);
  if (!st) STATES.set(reg, (st = { maxAdapters: DEFAULT_MAX_ADAPTERS, webgpu: false, cache: new Map() }));
  return st;
}

/** Names of the batch's rows, checked (strings of loaded adapters or null, at least one row). */
function checkNames(reg: AdapterRegistry, names: unknown): Array<string | null> {
  if (!Array.isArray(names) || names.length === 0) throw new MixedBatchError(`adapter_names must be a non-empty array with one adapter name (or null) per batch row, got ${JSON.stringify(names)}`);
  names.forEach((n, i) => {
    if (n !== null && typeof n !== 'string') throw new MixedBatchError(`adapter_names[${i}] must be an adapter name or null, got ${JSON.stringify(n)}`);
  });
  for (const n of names as Array<string | null>) if (n !== null) reg.entryFor(n);
  return names as Array<string | null>;
}

/** The row count of a run's inputs (first dim of its token / embedding / pixel input), if it has one. */
function batchOf(feeds: Feeds): { name: string; dims: readonly number[] } | undefined {
  for (const name of ['input_ids', 'inputs_embeds', 'pixel_values', 'input_features', 'attention_mask']) {
    const t = feeds[name] as OrtLike | undefined;
    if (t && Array.isArray(t.dims) && t.dims.length > 0) return { name, dims: t.dims };
  }
  return undefined;
}

/**
 * The unregistered entry a call with `adapter_names` runs: the stacks of its adapters (cached) and
 * its rows. Every session run it makes checks that the batch has one row per name.
 */
export async function mixedEntry(reg: AdapterRegistry, names: unknown): Promise<Entry> {
  const rowNames = checkNames(reg, names);
  const st = stateOf(reg);
  const distinct = [...new Set(rowNames.filter((n): n is string => n !== null))].sort();
  if (distinct.length > st.maxAdapters) {
    throw new MixedBatchError(`adapter_names uses ${distinct.length} distinct adapters (${distinct.join(', ')}), more than mixed_batches.max_adapters = ${st.maxAdapters}`);
  }
  const sessions = reg.hookedSessions();
  if (!sessions.every(isMixedSession)) throw new MixedBatchError('adapter_names needs a model loaded with mixed batches: from_pretrained(…, { mixed_batches: true }) or enableAdapters(env, { mixedBatches: true })');
  const key = JSON.stringify(distinct);
  const entries = distinct.map((n) => reg.entryFor(n));
  let hit = st.cache.get(key);
  const fresh = (s: Stacked): boolean => s.sources.every((x, i) => x.entry === entries[i] && x.scale === x.entry.scale && (x.entry.feeds === null || x.entry.feeds === x.feeds));
  if (hit && !fresh(hit)) hit = undefined;
  if (!hit) {
    const feeds: Feeds[][] = [];
    // Pinned while read (an eviction drops an adapter's feeds; the stacks keep copies).
    for (const e of entries) feeds.push(await reg.pinned(e, () => reg.feedsOf(e)));
    const stacks = sessions.map((h, si) => stackSession(h, distinct.map((name, j) => ({ name, feeds: feeds[j]![si]! })), st.webgpu));
    hit = { sources: entries.map((e, i) => ({ entry: e, scale: e.scale, feeds: feeds[i]! })), stacks };
  }
  st.cache.delete(key);
  st.cache.set(key, hit);
  while (st.cache.size > CACHED_SETS) st.cache.delete(st.cache.keys().next().value!);
  const slot = new Map(distinct.map((n, i) => [n, i + 1]));
  const rows = ort('int64', BigInt64Array.from(rowNames, (n) => BigInt(n === null ? 0 : slot.get(n)!)), [rowNames.length]);
  const stacks = hit.stacks;
  const count = rowNames.length;
  return {
    name: `adapter_names ${JSON.stringify(rowNames)}`,
    payload: null,
    scale: 1,
    info: null,
    feeds: stacks.map((f) => ({ ...f, [MIXED_ROWS]: rows })),
    loading: null,
    lastUse: 0,
    pins: 0,
    removed: true,
    checkRun: (feeds: Feeds) => {
      const b = batchOf(feeds);
      if (b && b.dims[0] !== count) {
        throw new MixedBatchError(`adapter_names has ${count} entries but the batch has ${b.dims[0]} rows (${b.name} [${b.dims.join(', ')}]); generate() with num_beams / num_return_sequences > 1 repeats rows: give one name per expanded row`);
      }
    },
  };
}

/**
 * Split call options with `adapter_names` into the entry to run and the call's other options;
 * `inputs` (a model call's) are checked at once (the runs check again: pipelines, generate()).
 */
export async function mixedCall(reg: AdapterRegistry, opts: Record<string, unknown>, inputs?: unknown): Promise<{ entry: Entry; rest: Record<string, unknown> }> {
  const { adapter_names, ...rest } = opts;
  if ('adapter' in rest || 'scale' in rest) throw new MixedBatchError('adapter_names cannot be combined with adapter or scale in one call (per-row scales: load_adapter each with its scale)');
  const entry = await mixedEntry(reg, adapter_names);
  if (inputs !== null && typeof inputs === 'object') entry.checkRun!(inputs as Feeds);
  return { entry, rest };
}

/** Whether call options ask for per-row adapters. */
export function hasAdapterNames(x: unknown): x is Record<string, unknown> {
  if (x === null || typeof x !== 'object') return false;
  const p = Object.getPrototypeOf(x) as unknown;
  return (p === Object.prototype || p === null) && 'adapter_names' in x;
}
