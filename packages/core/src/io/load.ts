/**
 * Loading adapters from any location (Hub id, URL, Files, bytes, local folder: see source.ts) and
 * writing them to disk (Node). Browser-safe: Node modules are reached only through node-files.ts.
 */
import type { ModelShape } from '../model/shape.js';
import { adapterFromBytes, adapterToFiles, CONFIG_FILE, WEIGHTS_FILE, type Adapter, type StorageDtype } from './adapter.js';
import { readAdapterFiles, type AdapterLocation, type ReadAdapterOptions } from './source.js';
import { writeLocalFiles } from './node-files.js';
import { loadOfficialIfAny } from './official/node.js';

export { DEFAULT_MAX_BYTES, fetchBytes } from './fetch.js';

export interface LoadAdapterOptions extends ReadAdapterOptions {
  shape?: ModelShape;
  allowNonFinite?: boolean;
}

/**
 * Load an adapter (`adapter_config.json` + `adapter_model.safetensors`) from any `AdapterLocation`:
 * a local folder (Node), an http(s) URL or a relative URL (browser), a Hub id with `opts.hub`, Files
 * or bytes. A path or URL to one of the two files is taken as its folder.
 */
export async function loadAdapter(location: AdapterLocation, opts: LoadAdapterOptions = {}): Promise<Adapter> {
  const { shape, allowNonFinite, ...read } = opts;
  // A local folder saved by a method's official code (TRAC, LoRTA port, …) is imported on the fly.
  if (typeof location === 'string') {
    const official = await loadOfficialIfAny(location, { ...(shape ? { shape } : {}), ...(allowNonFinite ? { allowNonFinite } : {}), ...(read.maxBytes !== undefined ? { maxBytes: read.maxBytes } : {}) });
    if (official) return official.adapter;
  }
  const files = await readAdapterFiles(location, read);
  return adapterFromBytes({
    config: files.config,
    safetensors: files.safetensors,
    source: files.source,
    ...(shape ? { shape } : {}),
    ...(allowNonFinite ? { allowNonFinite: true } : {}),
  });
}

/** Write `adapter_config.json` and `adapter_model.safetensors` into `dir` (created if needed). */
export async function saveAdapter(a: Adapter, dir: string, opts: { dtype?: StorageDtype } = {}): Promise<void> {
  const { configJson, safetensors } = adapterToFiles(a, opts);
  await writeLocalFiles(dir, { [CONFIG_FILE]: configJson, [WEIGHTS_FILE]: safetensors });
}
