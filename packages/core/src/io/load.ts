/**
 * Reading adapter folders from disk or over HTTP(S), and writing them to disk. Node modules are
 * imported dynamically so this module (and the package) stays loadable in browsers, where only
 * URLs work.
 */
import { AdapterFormatError, FetchError } from '../errors.js';
import type { ModelShape } from '../model/shape.js';
import { CONFIG_FILE, WEIGHTS_FILE, adapterFromBytes, adapterToFiles, joinLocation, type Adapter, type StorageDtype } from './adapter.js';

/** Default cap on the bytes of one downloaded or read file. */
export const DEFAULT_MAX_BYTES = 256 * 1024 * 1024;

export interface LoadAdapterOptions {
  shape?: ModelShape;
  /** Largest size of each file, checked against Content-Length and while streaming (default 256 MiB). */
  maxBytes?: number;
  fetch?: typeof fetch;
  allowNonFinite?: boolean;
}

function isUrl(location: string): boolean {
  return /^https?:\/\//i.test(location);
}

/** Download one file with a size cap: Content-Length is checked first, then the streamed bytes are counted. */
export async function fetchBytes(url: string, maxBytes: number, fetchFn: typeof fetch = globalThis.fetch): Promise<Uint8Array> {
  let res: Response;
  try {
    res = await fetchFn(url);
  } catch (e) {
    throw new FetchError(`request failed: ${(e as Error).message}`, { file: url });
  }
  if (!res.ok) {
    await res.body?.cancel().catch(() => undefined);
    throw new FetchError('HTTP request failed', { file: url, expected: '2xx', found: `${res.status} ${res.statusText}`.trim() });
  }
  const tooBig = (found: string): FetchError => new FetchError('download is larger than the size limit', { file: url, expected: `≤ ${maxBytes} bytes`, found });
  const declared = res.headers.get('content-length');
  if (declared !== null && /^\d+$/.test(declared.trim()) && Number(declared) > maxBytes) {
    await res.body?.cancel().catch(() => undefined);
    throw tooBig(`Content-Length ${declared}`);
  }
  if (!res.body) {
    const buf = new Uint8Array(await res.arrayBuffer());
    if (buf.length > maxBytes) throw tooBig(`${buf.length} bytes`);
    return buf;
  }
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw tooBig(`more than ${maxBytes} bytes received`);
    }
    chunks.push(value);
  }
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

async function readLocal(path: string, maxBytes: number): Promise<Uint8Array> {
  const fs = await import('node:fs/promises');
  let size: number;
  try {
    const st = await fs.stat(path);
    if (!st.isFile()) throw new AdapterFormatError('adapter file is not a regular file', { file: path });
    size = st.size;
  } catch (e) {
    if (e instanceof AdapterFormatError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new AdapterFormatError(code === 'ENOENT' ? 'adapter file not found' : `cannot read adapter file: ${(e as Error).message}`, { file: path });
  }
  if (size > maxBytes) throw new AdapterFormatError('adapter file is larger than the size limit', { file: path, expected: `≤ ${maxBytes} bytes`, found: `${size} bytes` });
  const buf = await fs.readFile(path);
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/**
 * Load an adapter folder (`adapter_config.json` + `adapter_model.safetensors`) from a local path
 * or an http(s) URL (both files are fetched relative to it). A path to one of the two files is
 * taken as its folder.
 */
export async function loadAdapter(location: string, opts: LoadAdapterOptions = {}): Promise<Adapter> {
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
  let base = location;
  const strip = (s: string): string => {
    for (const f of [CONFIG_FILE, WEIGHTS_FILE]) if (s.endsWith(`/${f}`)) return s.slice(0, -f.length - 1);
    return s;
  };
  let config: Uint8Array;
  let safetensors: Uint8Array;
  if (isUrl(location)) {
    const u = new URL(location);
    u.pathname = strip(u.pathname);
    const q = u.search;
    u.search = '';
    base = u.toString().replace(/\/+$/, '');
    const fetchFn = opts.fetch ?? globalThis.fetch;
    [config, safetensors] = await Promise.all([
      fetchBytes(`${joinLocation(base, CONFIG_FILE)}${q}`, maxBytes, fetchFn),
      fetchBytes(`${joinLocation(base, WEIGHTS_FILE)}${q}`, maxBytes, fetchFn),
    ]);
  } else {
    base = strip(location.replace(/\/+$/, '') || '/');
    const path = await import('node:path');
    [config, safetensors] = await Promise.all([readLocal(path.join(base, CONFIG_FILE), maxBytes), readLocal(path.join(base, WEIGHTS_FILE), maxBytes)]);
  }
  return adapterFromBytes({
    config,
    safetensors,
    source: base,
    ...(opts.shape ? { shape: opts.shape } : {}),
    ...(opts.allowNonFinite ? { allowNonFinite: true } : {}),
  });
}

/** Write `adapter_config.json` and `adapter_model.safetensors` into `dir` (created if needed). */
export async function saveAdapter(a: Adapter, dir: string, opts: { dtype?: StorageDtype } = {}): Promise<void> {
  const { configJson, safetensors } = adapterToFiles(a, opts);
  const fs = await import('node:fs/promises');
  const path = await import('node:path');
  await fs.mkdir(dir, { recursive: true });
  await fs.writeFile(path.join(dir, CONFIG_FILE), configJson, 'utf8');
  await fs.writeFile(path.join(dir, WEIGHTS_FILE), safetensors);
}
