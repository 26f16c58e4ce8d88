/**
 * What a registry entry re-materializes from. A loaded file keeps only its bytes once its feeds are
 * built (parsed parameters are dropped: an evicted adapter costs its file size, not its parsed
 * tensors); an `Adapter` object the caller gave is kept as given; a weighted combination keeps its
 * sources' payloads. Method-agnostic: everything here only sees (A′, B′, s) and head tensors.
 */
import { adapterFromBytes, type Adapter, type AdapterFromBytesInput, type Backend, type ModuleUpdate, type TensorMap } from '@tensorpeft/core';
import { materializeAny, type AnyUpdate, type GpuMaterializer } from './ort-feeds.js';

export interface PayloadModule {
  path: string;
  n: number;
  m: number;
  rho: number;
}

export interface Payload {
  peft_type: string;
  /** ρ of the universal form (the sum of the sources' ranks for a weighted combination). */
  rank: number;
  /** Targeted modules: checked against the model before anything is materialized. */
  modules: PayloadModule[];
  /** modules_to_save tensors: key → shape (checked before materializing too). */
  heads: Array<{ key: string; shape: readonly number[] }>;
  materialize(backend: Backend | undefined, gpu: GpuMaterializer | undefined): Promise<{ updates: AnyUpdate[]; extras: TensorMap }>;
}

function shapeOf(adapter: Adapter): Pick<Payload, 'peft_type' | 'rank' | 'modules' | 'heads'> {
  const rho = adapter.plan.rank;
  return {
    peft_type: adapter.config.peft_type,
    rank: rho,
    modules: adapter.plan.modules.map((m) => ({ path: m.path, n: m.n, m: m.m, rho })),
    heads: [...adapter.extras].map(([key, t]) => ({ key, shape: t.shape })),
  };
}

/** An `Adapter` object given by the caller: kept (it is the caller's). */
export function adapterPayload(adapter: Adapter): Payload {
  return {
    ...shapeOf(adapter),
    async materialize(backend, gpu) {
      return { updates: await materializeAny(adapter, backend, gpu), extras: adapter.extras };
    },
  };
}

/**
 * Files read or given as bytes: the parsed adapter serves the first materialization only; later
 * ones (after an eviction) parse the kept bytes again.
 */
export function filesPayload(adapter: Adapter, files: AdapterFromBytesInput): Payload {
  let parsed: Adapter | null = adapter;
  return {
    ...shapeOf(adapter),
    async materialize(backend, gpu) {
      const a = parsed ?? adapterFromBytes(files);
      parsed = null;
      return { updates: await materializeAny(a, backend, gpu), extras: a.extras };
    },
  };
}

export interface WeightedSource {
  payload: Payload;
  /** The user's weight times the source adapter's own scale. */
  factor: number;
}

/**
 * Σᵢ wᵢ·ΔWᵢ in the universal form, exactly, by rank concatenation per module:
 * A′ = [A′₁ … A′ₖ] (n × Σρᵢ), B′ = [f₁s₁B′₁ … fₖsₖB′ₖ] (m × Σρᵢ), s = 1. A module only some sources
 * target concatenates the ones that do. Materialized on the CPU (the sources' factors are CPU data).
 */
export function weightedPayload(sources: WeightedSource[]): Payload {
  const byPath = new Map<string, PayloadModule>();
  for (const { payload } of sources) {
    for (const m of payload.modules) {
      const prev = byPath.get(m.path);
      byPath.set(m.path, prev ? { ...prev, rho: prev.rho + m.rho } : { ...m });
    }
  }
  const modules = [...byPath.values()];
  return {
    peft_type: 'WEIGHTED',
    rank: Math.max(0, ...modules.map((m) => m.rho)),
    modules,
    heads: [],
    async materialize(backend) {
      const parts: Array<{ updates: ModuleUpdate[]; factor: number }> = [];
      for (const s of sources) parts.push({ updates: (await s.payload.materialize(backend, undefined)).updates as ModuleUpdate[], factor: s.factor });
      const updates: ModuleUpdate[] = [];
      for (const mod of modules) {
        const A = new Float32Array(mod.n * mod.rho);
        const B = new Float32Array(mod.m * mod.rho);
        let col = 0;
        for (const { updates: us, factor } of parts) {
          const u = us.find((x) => x.path === mod.path);
          if (!u) continue;
          const k = factor * u.s;
          // Row-major [n, ρ] / [m, ρ]: source columns go to columns col … col+ρᵢ−1.
          for (let i = 0; i < mod.n; i++) for (let r = 0; r < u.rho; r++) A[i * mod.rho + col + r] = u.A[i * u.rho + r]!;
          for (let i = 0; i < mod.m; i++) for (let r = 0; r < u.rho; r++) B[i * mod.rho + col + r] = k * u.B[i * u.rho + r]!;
          col += u.rho;
        }
        updates.push({ path: mod.path, n: mod.n, m: mod.m, rho: mod.rho, s: 1, A, B });
      }
      return { updates, extras: new Map() };
    },
  };
}
