/**
 * Browser side of browser.test.ts (bundled with esbuild, served from 127.0.0.1): runs cases
 * prepared in Node on the wasm backend inside the page and returns the raw outputs; the test
 * compares them in Node with the JS reference. Also reports how a corrupted `.wasm` fails.
 */
import { revive, runKernelCase, type KernelCase } from '@tensorpeft/browser-harness/page';
import { WasmBackend, WasmLoadError } from './index.js';

/** Float32Arrays travel as plain number arrays (exact: float32 → double → float32). */
export type Wire = unknown;

export type BrowserCase = KernelCase;

async function runCases(wire: Wire, source?: string): Promise<{ backend: string; outputs: number[][][] }> {
  const cases = revive(wire) as BrowserCase[];
  const backend = await WasmBackend.create(source ? { source } : {});
  const outputs: number[][][] = [];
  for (const c of cases) outputs.push(await runKernelCase(backend, c));
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
