/**
 * Backend registry (tfjs style): backends register a factory with a priority; `getBackend()`
 * returns the highest-priority backend whose factory succeeds, falling back down the list, and a
 * caller can force one by name. Core never imports wasm/webgpu backends: they register themselves.
 */
import { TensorPeftError } from '../errors.js';
import { JsBackend } from './js.js';
import type { Backend } from './types.js';

type Factory = () => Backend | Promise<Backend>;
interface Entry {
  factory: Factory;
  priority: number;
  instance?: Backend;
  failure?: unknown;
}

const entries = new Map<string, Entry>();

export function registerBackend(name: string, factory: Factory, priority = 0): void {
  entries.set(name, { factory, priority });
}

export function registeredBackends(): string[] {
  return [...entries.entries()].sort((a, b) => b[1].priority - a[1].priority).map(([n]) => n);
}

async function instantiate(name: string, e: Entry): Promise<Backend> {
  if (!e.instance) e.instance = await e.factory();
  return e.instance;
}

/** The named backend, or the fastest one that initializes. */
export async function getBackend(name?: string): Promise<Backend> {
  if (name !== undefined) {
    const e = entries.get(name);
    if (!e) {
      throw new TensorPeftError('unknown backend', { field: 'backend', expected: registeredBackends().join(' | '), found: name });
    }
    return instantiate(name, e);
  }
  for (const n of registeredBackends()) {
    const e = entries.get(n)!;
    if (e.failure !== undefined) continue;
    try {
      return await instantiate(n, e);
    } catch (err) {
      e.failure = err; // fall back to the next backend; remembered so we do not retry every call
    }
  }
  return new JsBackend();
}

registerBackend('js', () => new JsBackend(), 0);
