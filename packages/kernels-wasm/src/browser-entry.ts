/**
 * Browser side of browser.test.ts (bundled with esbuild, served from 127.0.0.1): runs cases
 * prepared in Node on the wasm backend inside the page and returns the raw outputs; the test
 * compares them in Node with the JS reference. Also reports how a corrupted `.wasm` fails.
 */
import type { MatExpr, MaterializeJob, ModuleUpdate, WeightLayout } from '@tensorpeft/core';
import { WasmBackend, WasmLoadError } from './index.js';

/** Float32Arrays travel as plain number arrays (exact: float32 → double → float32). */
export type Wire = unknown;

function revive(v: Wire): unknown {
  if (Array.isArray(v)) return v.map(revive);
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if (o.$f32) return Float32Array.from(o.$f32 as number[]);
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, revive(x)]));
  }
  return v;
}

export type BrowserCase =
  | { op: 'evaluate'; expr: MatExpr }
  | { op: 'materialize'; jobs: MaterializeJob[] }
  | { op: 'merge'; W: Float32Array; layout: WeightLayout; u: ModuleUpdate }
  | { op: 'apply'; X: Float32Array; Y: Float32Array; rows: number; u: ModuleUpdate };

async function runCases(wire: Wire, source?: string): Promise<{ backend: string; outputs: number[][][] }> {
  const cases = revive(wire) as BrowserCase[];
  const backend = await WasmBackend.create(source ? { source } : {});
  const outputs: number[][][] = [];
  for (const c of cases) {
    switch (c.op) {
      case 'evaluate':
        outputs.push([Array.from(await backend.evaluate(c.expr))]);
        break;
      case 'materialize':
        outputs.push((await backend.materialize(c.jobs)).flatMap((u) => [Array.from(u.A), Array.from(u.B)]));
        break;
      case 'merge':
        await backend.merge(c.W, c.layout, c.u);
        outputs.push([Array.from(c.W)]);
        break;
      case 'apply':
        await backend.apply(c.X, c.Y, c.rows, c.u);
        outputs.push([Array.from(c.Y)]);
        break;
    }
  }
  return { backend: backend.name, outputs };
}

async function loadBroken(source: string): Promise<{ name: string; typed: boolean; message: string }> {
  try {
    await WasmBackend.create({ source });
    return { name: 'none', typed: false, message: 'loaded' };
  } catch (e) {
    return { name: (e as Error).name, typed: e instanceof WasmLoadError, message: (e as Error).message };
  }
}

Object.assign(globalThis, { tensorpeftTest: { runCases, loadBroken } });
