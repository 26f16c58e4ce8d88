/**
 * Sibling fusion, feed side (graph side: rewrite-siblings.ts). A session whose graph has fused
 * inputs `tensorpeft.siblings:<path>=<m>,….A|B` is shown to the registry as if it had the
 * per-module inputs `tensorpeft.<path>.A` [n, ρ] / `.B` [ρ, m] (`siblingView`), so materializing,
 * scaling, swapping and evicting adapters work per module exactly as before; the session's run
 * assembles the fused tensors from the per-module ones (`withSiblingFeeds`):
 *
 *     A = [A′₁ | A′₂ | …]  (n × Σρᵢ)      B = blockdiag(s₁B′₁ᵀ, s₂B′₂ᵀ, …)  (Σρᵢ × Σmᵢ)
 *
 * — once per adapter feeds object, through the feed pool's prepare step (feed-pool.ts), as the
 * fp16 conversion is: runs reuse the assembled tensors. A module the adapter leaves out has ρ = 0
 * (no columns of A, no rows of B); on WebGPU (ρ = 1 zero feeds for the base) a zero column and row.
 * Copies only: the fused product's values are the per-module products' (see the test for how close).
 *
 * CPU tensors only: GPU-fed adapters (kernels-wgsl buffers) cannot be concatenated here, so a
 * model meant for them is loaded unfused (`fuse_siblings: false`, the default).
 */
import { PluginError } from './errors.js';
import type { Feeds } from './ort-feeds.js';
import { isPrepared, withFeedPrep } from './feed-pool.js';
import { INPUT_PREFIX } from './rewrite.js';
import { parseSiblingInput, type SiblingGroup } from './rewrite-siblings.js';

type Meta = { name: string; shape?: ReadonlyArray<number | string>; type?: string } & Record<string, unknown>;

export interface SiblingView {
  /** The session's input names with each fused pair replaced by its members' per-module inputs. */
  names: string[];
  /** Input metadata likewise (members get the fused inputs' type; shapes [n, ρ] / [ρ, m]). */
  meta: Meta[];
  groups: SiblingGroup[];
  /** Per-module inputs that exist only in this view (fed to the fused inputs, not to ORT). */
  virtual: Set<string>;
}

/** The per-module view of `session`'s inputs; undefined when it has no fused inputs. */
export function siblingView(session: { inputNames: readonly string[]; inputMetadata?: ReadonlyArray<Meta> }): SiblingView | undefined {
  const fusedA = session.inputNames.filter((n) => parseSiblingInput(n)?.side === 'A');
  if (fusedA.length === 0) return undefined;
  const meta = new Map((session.inputMetadata ?? []).map((m) => [m.name, m]));
  const real = new Set(session.inputNames);
  const names: string[] = [];
  const metas: Meta[] = [];
  const groups: SiblingGroup[] = [];
  const virtual = new Set<string>();
  const seen = new Set<string>();
  for (const name of session.inputNames) {
    const parsed = parseSiblingInput(name);
    if (!parsed) {
      names.push(name);
      const m = meta.get(name);
      if (m) metas.push(m);
      continue;
    }
    if (parsed.side === 'B') continue;
    const inputB = `${name.slice(0, -2)}.B`;
    const ma = meta.get(name);
    if (!real.has(inputB) || !ma?.shape) throw new PluginError(`fused adapter input ${name} has no metadata or no ${inputB} (onnxruntime ≥ 1.22 needed)`);
    const n = ma.shape[0]!;
    groups.push({ inputA: name, inputB, members: parsed.members });
    for (const { path, m } of parsed.members) {
      const a = `${INPUT_PREFIX}${path}.A`;
      const b = `${INPUT_PREFIX}${path}.B`;
      if (!real.has(a)) virtual.add(a).add(b);
      if (seen.has(a) || real.has(a)) continue;
      seen.add(a);
      names.push(a, b);
      metas.push({ ...ma, name: a, shape: [n, 'rho'] }, { ...ma, name: b, shape: ['rho', m] });
    }
  }
  return { names, meta: metas, groups, virtual };
}

interface TensorLike {
  type: string;
  data: ArrayLike<number> & { length: number };
  dims: readonly number[];
  location?: string;
  constructor: new (type: string, data: unknown, dims: readonly number[]) => unknown;
}

/** The fused tensors of `group` from per-module feeds (see the module comment). */
function fuseGroup(group: SiblingGroup, feeds: Feeds): { A: unknown; B: unknown } {
  const parts = group.members.map(({ path, m }) => {
    const a = feeds[`${INPUT_PREFIX}${path}.A`] as TensorLike | undefined;
    const b = feeds[`${INPUT_PREFIX}${path}.B`] as TensorLike | undefined;
    if (!a || !b) throw new PluginError(`no feed for module ${path} of the fused inputs ${group.inputA}`);
    if ((a.location ?? 'cpu') !== 'cpu' || (b.location ?? 'cpu') !== 'cpu') {
      throw new PluginError(`module ${path}: a GPU-resident adapter tensor cannot feed the fused sibling inputs of this model; load the model with fuse_siblings: false (enableAdapters fuseSiblings: false) for GPU-fed adapters, or load the adapter with { gpu: null }`);
    }
    const [n, rho] = a.dims as [number, number];
    if (a.dims.length !== 2 || b.dims.length !== 2 || b.dims[0] !== rho || b.dims[1] !== m || a.type !== b.type) {
      throw new PluginError(`module ${path}: feeds A [${a.dims.join(', ')}] ${a.type} and B [${b.dims.join(', ')}] ${b.type} do not fit the fused inputs (B [ρ, ${m}] of A's type expected)`);
    }
    return { a, b, n, rho, m };
  });
  const first = parts[0]!;
  const n = first.n;
  const R = parts.reduce((s, p) => s + p.rho, 0);
  const M = parts.reduce((s, p) => s + p.m, 0);
  const Ctor = (first.a.data as unknown as { constructor: new (len: number) => Float32Array | Uint16Array }).constructor;
  const A = new Ctor(n * R);
  const B = new Ctor(R * M);
  let r0 = 0;
  let c0 = 0;
  for (const p of parts) {
    if (p.n !== n || p.a.type !== first.a.type) throw new PluginError(`module ${group.members[parts.indexOf(p)]!.path}: A is [${p.n}, ${p.rho}] ${p.a.type}, the group's other modules [${n}, ·] ${first.a.type}`);
    const a = p.a.data;
    const b = p.b.data;
    // Row-major A [n, R]: this module's ρ columns at r0; B [R, M]: its [ρ, m] block at (r0, c0).
    for (let i = 0; i < n; i++) for (let r = 0; r < p.rho; r++) A[i * R + r0 + r] = a[i * p.rho + r]!;
    for (let r = 0; r < p.rho; r++) for (let j = 0; j < p.m; j++) B[(r0 + r) * M + c0 + j] = b[r * p.m + j]!;
    r0 += p.rho;
    c0 += p.m;
  }
  const T = first.a.constructor;
  return { A: new T(first.a.type, A, [n, R]), B: new T(first.a.type, B, [R, M]) };
}

/** `feeds` with the fused inputs assembled and the view-only per-module inputs left out. */
export function fuseSiblingFeeds(view: SiblingView, feeds: Feeds): Feeds {
  const out: Feeds = {};
  for (const k of Object.keys(feeds)) if (!view.virtual.has(k)) out[k] = feeds[k];
  for (const g of view.groups) {
    const { A, B } = fuseGroup(g, feeds);
    out[g.inputA] = A;
    out[g.inputB] = B;
  }
  return out;
}

type Run = (feeds: Feeds, ...rest: unknown[]) => Promise<Record<string, unknown>>;
const PREPARE = Symbol.for('tensorpeft.prepareFeeds');

/**
 * `run` taking per-module feeds for a session with fused inputs (unchanged without `view`): the
 * feed pool's prepare step assembles them once per adapter feeds object, then applies `run`'s own
 * prepare step (the fp16 conversion); feeds from anywhere else are assembled per run.
 */
export function withSiblingFeeds(view: SiblingView | undefined, run: Run): Run {
  if (!view) return run;
  const inner = (run as unknown as Record<symbol, ((f: Feeds) => Feeds) | undefined>)[PREPARE];
  const prep = (f: Feeds): Feeds => {
    const fused = fuseSiblingFeeds(view, f);
    return inner ? inner(fused) : fused;
  };
  const wrapped: Run = async (feeds, ...rest) => run(isPrepared(feeds) ? feeds : prep(feeds), ...rest);
  return withFeedPrep(wrapped, prep);
}
