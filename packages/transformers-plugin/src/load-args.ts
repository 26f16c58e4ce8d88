/**
 * `load_adapter`'s two argument orders: PEFT's `(source, { adapter_name, … })` and the older
 * `(name, source, opts)`. The old form is recognised only when it cannot be the new one: a second
 * argument that is a string, or an adapter / file object (never an options object).
 */
import { PluginError } from './errors.js';
import type { AdapterSource, LoadAdapterOptions } from './types.js';

let warned = false;

function isBlobLike(x: unknown): boolean {
  return typeof Blob !== 'undefined' && x instanceof Blob;
}

/** An adapter source that is an object: core Adapter, `{ config, safetensors }`, URL, Blobs, FileList. */
function isSourceObject(x: unknown): boolean {
  if (typeof x !== 'object' || x === null) return false;
  if (('method' in x && 'plan' in x) || ('config' in x && 'safetensors' in x)) return true;
  if (x instanceof URL || isBlobLike(x) || Array.isArray(x)) return true;
  return typeof (x as { length?: unknown }).length === 'number' && typeof (x as { item?: unknown }).item === 'function';
}

export function normalizeLoadArgs(args: unknown[]): { name: string; source: AdapterSource; opts: LoadAdapterOptions } {
  const [a, b, c] = args;
  if (typeof a === 'string' && (typeof b === 'string' || isSourceObject(b))) {
    if (!warned) {
      warned = true;
      console.warn('tensorpeft: load_adapter(name, source, opts) is deprecated; use load_adapter(source, { adapter_name: name, ... }) (PEFT\'s order)');
    }
    const opts = (c ?? {}) as LoadAdapterOptions;
    if (typeof opts !== 'object' || opts === null) throw new PluginError('load_adapter: the options must be an object');
    return { name: a, source: b as AdapterSource, opts };
  }
  if (b !== undefined && (typeof b !== 'object' || b === null)) throw new PluginError(`load_adapter(source, options): options must be an object, got ${typeof b}`);
  if (a === undefined || a === null) throw new PluginError('load_adapter needs a source (Hub id, URL, folder, Files or bytes)');
  const opts = (b ?? {}) as LoadAdapterOptions;
  return { name: opts.adapter_name ?? 'default', source: a as AdapterSource, opts };
}
