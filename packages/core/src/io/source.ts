/**
 * Where an adapter's two files come from, in the browser and in Node through one path: a Hub repo
 * id (`user/repo`, at a revision, resolved like transformers.js resolves model ids), an absolute or
 * relative URL, `File`s / a `FileList` / `Blob`s (drag and drop), bytes, or a local folder (Node).
 */
import { AdapterFormatError, ConfigError } from '../errors.js';
import { CONFIG_FILE, WEIGHTS_FILE, joinLocation } from './adapter.js';
import { DEFAULT_MAX_BYTES, fetchBytes, type FetchBytesOptions, type RedirectPolicy } from './fetch.js';
import { IS_NODE, fileUrlToPath, isLocalDir, readLocalFile } from './node-files.js';

/** Where Hub ids are fetched from: transformers.js' `env.remoteHost` / `env.remotePathTemplate`. */
export interface HubOptions {
  /** Default `https://huggingface.co/`. */
  remoteHost?: string;
  /** `{model}` and `{revision}` are replaced. Default `{model}/resolve/{revision}/`. */
  remotePathTemplate?: string;
}

export const DEFAULT_REMOTE_HOST = 'https://huggingface.co/';
export const DEFAULT_REMOTE_PATH_TEMPLATE = '{model}/resolve/{revision}/';

/** The two files given directly: bytes, a JSON string / object (config), or Blobs / Files. */
export interface AdapterFileInputs {
  config: Blob | Uint8Array | string | object;
  safetensors: Blob | Uint8Array;
}

/**
 * Anything an adapter can be read from: a string (URL, Hub id or local path), a URL, a FileList or
 * array of Files / Blobs named `adapter_config.json` and `adapter_model.safetensors` (other files
 * are ignored, folders in the names too), or the two files as an object.
 */
export type AdapterLocation = string | URL | ArrayLike<Blob> | Iterable<Blob> | AdapterFileInputs;

/** One progress event of a file read (transformers.js' statuses). */
export interface FileProgress {
  status: 'initiate' | 'download' | 'progress' | 'done';
  file: string;
  loaded?: number;
  total?: number;
}

export interface ReadAdapterOptions extends Omit<FetchBytesOptions, 'onProgress' | 'redirect'> {
  /**
   * Hub ids (`user/repo`) are resolved only when this is given (the plugin passes transformers.js'
   * env); `false` or absent: such a string is a relative path / URL.
   */
  hub?: HubOptions | false;
  /** Hub revision (branch, tag or commit), default `main`. */
  revision?: string;
  /**
   * Base of relative URLs (default in browsers: the document's base URL). When given, strings that
   * are not URLs or Hub ids are URLs relative to it in Node too (not local paths).
   */
  baseUrl?: string;
  /** Redirects: default `same-origin` for URLs, `follow` for Hub ids (the Hub serves files from CDN hosts). */
  redirect?: RedirectPolicy;
  onProgress?: (e: FileProgress) => void;
}

/** The raw files of an adapter, and where they came from (used in error messages). */
export interface AdapterFiles {
  config: Uint8Array | string | object;
  safetensors: Uint8Array;
  source: string;
}

/** `user/repo` as the Hub names repositories (no leading `.`/`/`, no `..` or `--` in a name). */
export function isHubRepoId(s: string): boolean {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,95}\/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$/.test(s)) return false;
  return !s.includes('..') && !s.includes('--') && !s.endsWith('.');
}

function joinUrl(...parts: string[]): string {
  return parts
    .map((p, i) => (i === 0 ? p.replace(/\/+$/, '') : i === parts.length - 1 ? p.replace(/^\/+/, '') : p.replace(/^\/+|\/+$/g, '')))
    .filter((p) => p !== '')
    .join('/');
}

/** The URL of `file` in Hub repo `id` at `revision`, built the way transformers.js builds model file URLs. */
export function hubFileUrl(id: string, file: string, hub: HubOptions = {}, revision = 'main'): string {
  const template = (hub.remotePathTemplate ?? DEFAULT_REMOTE_PATH_TEMPLATE).replaceAll('{model}', id).replaceAll('{revision}', encodeURIComponent(revision));
  return joinUrl(hub.remoteHost ?? DEFAULT_REMOTE_HOST, template, file);
}

function isBlob(x: unknown): x is Blob {
  return typeof Blob !== 'undefined' && x instanceof Blob;
}

async function blobBytes(b: Blob, file: string, maxBytes: number, onProgress?: (e: FileProgress) => void): Promise<Uint8Array> {
  onProgress?.({ status: 'initiate', file });
  // The size is known before reading: checked before anything is allocated.
  if (b.size > maxBytes) throw new AdapterFormatError('adapter file is larger than the size limit', { file, expected: `≤ ${maxBytes} bytes`, found: `${b.size} bytes` });
  const out = new Uint8Array(await b.arrayBuffer());
  onProgress?.({ status: 'progress', file, loaded: out.length, total: out.length });
  onProgress?.({ status: 'done', file });
  return out;
}

function fileName(b: Blob): string {
  const f = b as Blob & { name?: string; webkitRelativePath?: string };
  return (f.webkitRelativePath || f.name || '').split(/[\\/]/).pop() ?? '';
}

/** The two files of a FileList / array of Files (drag and drop of a folder or of both files). */
function pickFiles(list: Blob[]): { config: Blob; safetensors: Blob; source: string } {
  const byName = new Map(list.map((b) => [fileName(b), b]));
  const config = byName.get(CONFIG_FILE);
  const safetensors = byName.get(WEIGHTS_FILE);
  if (!config || !safetensors) {
    throw new AdapterFormatError('the dropped files are not an adapter', {
      expected: `${CONFIG_FILE} and ${WEIGHTS_FILE}`,
      found: list.map(fileName).join(', ') || 'no files',
    });
  }
  const first = safetensors as Blob & { webkitRelativePath?: string };
  const folder = first.webkitRelativePath ? first.webkitRelativePath.split('/').slice(0, -1).join('/') : '';
  return { config, safetensors, source: folder || 'dropped files' };
}

function stripFile(s: string): string {
  for (const f of [CONFIG_FILE, WEIGHTS_FILE]) if (s.endsWith(`/${f}`)) return s.slice(0, -f.length - 1);
  return s;
}

function documentBase(): string | undefined {
  const g = globalThis as { document?: { baseURI?: string }; location?: { href?: string } };
  return g.document?.baseURI ?? g.location?.href;
}

/** Fetch both files of the folder at URL `base` (query string kept on each file). */
async function readUrlFolder(url: URL, opts: ReadAdapterOptions, redirect: RedirectPolicy): Promise<AdapterFiles> {
  const u = new URL(url.href);
  u.pathname = stripFile(u.pathname);
  const q = u.search;
  u.search = '';
  u.hash = '';
  const base = u.toString().replace(/\/+$/, '');
  const get = (file: string): Promise<Uint8Array> => fetchFile(`${joinLocation(base, file)}${q}`, opts, redirect);
  // One after the other: progress events stay in file order, and a bad config fails before the weights download.
  const config = await get(CONFIG_FILE);
  const safetensors = await get(WEIGHTS_FILE);
  return { config, safetensors, source: base };
}

async function fetchFile(url: string, opts: ReadAdapterOptions, redirect: RedirectPolicy): Promise<Uint8Array> {
  const { hub: _h, revision: _r, baseUrl: _b, onProgress, ...fetchOpts } = opts;
  onProgress?.({ status: 'initiate', file: url });
  onProgress?.({ status: 'download', file: url });
  const bytes = await fetchBytes(url, {
    ...fetchOpts,
    redirect,
    ...(onProgress ? { onProgress: (loaded: number, total: number | undefined) => onProgress({ status: 'progress', file: url, loaded, total: total ?? loaded }) } : {}),
  });
  onProgress?.({ status: 'done', file: url });
  return bytes;
}

async function readLocalFolder(path: string, opts: ReadAdapterOptions): Promise<AdapterFiles> {
  const base = stripFile(path.replace(/[\\/]+$/, '') || '/');
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
  const read = async (file: string): Promise<Uint8Array> => {
    const full = joinLocation(base, file);
    opts.onProgress?.({ status: 'initiate', file: full });
    opts.onProgress?.({ status: 'download', file: full });
    const out = await readLocalFile(full, maxBytes, opts.onProgress ? (loaded, total) => opts.onProgress!({ status: 'progress', file: full, loaded, total }) : undefined);
    opts.onProgress?.({ status: 'done', file: full });
    return out;
  };
  const config = await read(CONFIG_FILE);
  const safetensors = await read(WEIGHTS_FILE);
  return { config, safetensors, source: base };
}

/**
 * Read an adapter's files from any `AdapterLocation`. Strings: `http(s)://…` is a URL; `file:…` a
 * local path (Node); a Hub id `user/repo` (with `opts.hub`) is fetched from the Hub at
 * `opts.revision` unless (Node) a local folder of that name exists; anything else is a local path in
 * Node (without `opts.baseUrl`) and a URL relative to the document (or `baseUrl`) in browsers (`/adapters/x`, `./x`, `../x`). A path or URL
 * to one of the two files is taken as its folder. Sizes are capped by `maxBytes` on every path.
 */
export async function readAdapterFiles(location: AdapterLocation, opts: ReadAdapterOptions = {}): Promise<AdapterFiles> {
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
  const urlRedirect = opts.redirect ?? 'same-origin';
  if (location instanceof URL) {
    if (location.protocol === 'file:') return readLocalFolder(await fileUrlToPath(location.href), opts);
    return readUrlFolder(location, opts, urlRedirect);
  }
  if (typeof location === 'string') {
    if (/^https?:\/\//i.test(location)) return readUrlFolder(new URL(location), opts, urlRedirect);
    if (/^file:/i.test(location)) return readLocalFolder(await fileUrlToPath(location), opts);
    const hubId = stripFile(location.replace(/\/+$/, ''));
    if (opts.hub && isHubRepoId(hubId) && !(IS_NODE && (await isLocalDir(location)))) {
      const hub = opts.hub;
      const rev = opts.revision ?? 'main';
      const redirect = opts.redirect ?? 'follow';
      const config = await fetchFile(hubFileUrl(hubId, CONFIG_FILE, hub, rev), opts, redirect);
      const safetensors = await fetchFile(hubFileUrl(hubId, WEIGHTS_FILE, hub, rev), opts, redirect);
      return { config, safetensors, source: rev === 'main' ? hubId : `${hubId}@${rev}` };
    }
    if (IS_NODE && opts.baseUrl === undefined) return readLocalFolder(location, opts);
    const base = opts.baseUrl ?? documentBase();
    if (base === undefined) throw new ConfigError('a relative adapter URL needs a base URL (no document here: pass baseUrl)', { file: location });
    return readUrlFolder(new URL(location, base), opts, urlRedirect);
  }
  if (isFileInputs(location)) {
    const cfg = location.config;
    const config = isBlob(cfg) ? await blobBytes(cfg, CONFIG_FILE, maxBytes, opts.onProgress) : cfg;
    const st = location.safetensors;
    const safetensors = isBlob(st) ? await blobBytes(st, WEIGHTS_FILE, maxBytes, opts.onProgress) : st;
    if (safetensors.length > maxBytes) throw new AdapterFormatError('adapter file is larger than the size limit', { file: WEIGHTS_FILE, expected: `≤ ${maxBytes} bytes`, found: `${safetensors.length} bytes` });
    return { config, safetensors, source: isBlob(st) && fileName(st) ? fileName(st) : 'bytes' };
  }
  const list = Array.from(location as ArrayLike<Blob>);
  if (list.length === 1 && !isBlob(list[0])) throw new AdapterFormatError('not an adapter location', { expected: 'a URL, Hub id, path, File/FileList/Blob or { config, safetensors }' });
  if (!list.every(isBlob)) throw new AdapterFormatError('not an adapter location', { expected: 'Files / Blobs', found: 'a list of other values' });
  const picked = pickFiles(list);
  const config = await blobBytes(picked.config, CONFIG_FILE, maxBytes, opts.onProgress);
  const safetensors = await blobBytes(picked.safetensors, WEIGHTS_FILE, maxBytes, opts.onProgress);
  return { config, safetensors, source: picked.source };
}

function isFileInputs(x: unknown): x is AdapterFileInputs {
  return typeof x === 'object' && x !== null && !isBlob(x) && 'config' in x && 'safetensors' in x;
}
