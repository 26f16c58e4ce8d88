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
  /** The one instance, shared by every caller (also by concurrent first callers). */
  instance?: Promise<Backend>;
  failure?: unknown;
}

const entries = new Map<string, Entry>();

export function registerBackend(name: string, factory: Factory, priority = 0): void {
  entries.set(name, { factory, priority });
}

export function registeredBackends(): string[] {
  return [...entries.entries()].sort((a, b) => b[1].priority - a[1].priority).map(([n]) => n);
}

function instantiate(e: Entry): Promise<Backend> {
  // Cache the promise, not the result: two concurrent first calls must not run an (async, e.g.
  // GPU-device-creating) factory twice. A failed factory is forgotten so a later call can retry.
  if (!e.instance) {
    const p = (async () => e.factory())();
    e.instance = p;
    p.catch(() => {
      if (e.instance === p) delete e.instance;
    });
  }
  return e.instance;
}

/** The named backend, or the fastest one that initializes. */
export async function getBackend(name?: string): Promise<Backend> {
  if (name !== undefined) {
    const e = entries.get(name);
    if (!e) {
      throw new TensorPeftError('unknown backend', { field: 'backend', expected: registeredBackends().join(' | '), found: name });
    }
    return instantiate(e);
  }
  for (const n of registeredBackends()) {
    const e = entries.get(n)!;
    if (e.failure !== undefined) continue;
    try {
      return await instantiate(e);
    } catch (err) {
      e.failure = err; // fall back to the next backend; remembered so we do not retry every call
    }
  }
  return new JsBackend();
}

registerBackend('js', () => new JsBackend(), 0);
