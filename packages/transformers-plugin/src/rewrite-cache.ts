/**
 * A cache of rewritten models (issue 16): the second load of a model skips the protobuf decode /
 * rewrite / encode. Keyed by the SHA-256 of the original `.onnx` bytes, `REWRITE_VERSION`, the mode
 * and the targeted module paths; the stored bytes carry their length and a hash of their edges,
 * checked on every read, so a torn or truncated cache file is rewritten again instead of reaching
 * ONNX Runtime.
 * Stores: a folder in Node (`folderRewriteStore`), Cache Storage in browsers (`cacheStorageRewriteStore`).
 * Branch mode only: merge mode needs the base weights decoded in this process anyway.
 */
import type { RewriteResult } from './rewrite-types.js';

/**
 * Bumped whenever rewrite.ts changes what it writes for the same input (new inputs, node layout):
 * entries written by another version are never read.
 */
export const REWRITE_VERSION = 1;

/** What the load path reports about a rewrite (stored next to the bytes). */
export type RewriteMeta = Omit<RewriteResult, 'bytes'>;

export interface RewriteStore {
  /** The bytes and meta stored under `key`, or undefined. */
  get(key: string): Promise<{ bytes: Uint8Array; meta: RewriteMeta & { sha256: string } } | undefined>;
  put(key: string, bytes: Uint8Array, meta: RewriteMeta & { sha256: string }): Promise<void>;
}

/** `true`: the default store of the runtime; a string: that folder (Node); an object: that store; `false`: none. */
export type RewriteCacheOption = boolean | string | RewriteStore;

const CRYPTO_MODULE = 'node:crypto';

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  // Node: node:crypto hashes in place, 3-5x faster than crypto.subtle (which copies and hops to
  // the thread pool) on this machine; the hash is most of a cache hit's cost.
  if (typeof process !== 'undefined' && process.versions?.node) {
    const { createHash } = (await import(/* @vite-ignore */ CRYPTO_MODULE)) as typeof import('node:crypto');
    return createHash('sha256').update(bytes).digest('hex');
  }
  const subtle = globalThis.crypto?.subtle;
  if (!subtle) throw new Error('the rewrite cache needs crypto.subtle (a secure context in browsers)');
  const d = new Uint8Array(await subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
  let s = '';
  for (const b of d) s += b.toString(16).padStart(2, '0');
  return s;
}

/** The cache key of a rewrite: model hash, rewrite version, mode and targets (order-independent). */
export async function rewriteKey(modelBytes: Uint8Array, targets: readonly string[], mode: string): Promise<string> {
  const model = await sha256Hex(modelBytes);
  const spec = JSON.stringify({ v: REWRITE_VERSION, mode, targets: [...new Set(targets)].sort() });
  const specHash = await sha256Hex(new TextEncoder().encode(spec));
  return `${model}-${specHash.slice(0, 16)}`;
}

const FS_MODULE = 'node:fs/promises';
const PATH_MODULE = 'node:path';
const OS_MODULE = 'node:os';

/** Node: `<dir>/<key>.onnx` + `<key>.json`, written to a temporary name and renamed (no torn entries). */
export function folderRewriteStore(dir?: string): RewriteStore {
  const paths = async () => {
    // Specifiers in variables: bundlers do not follow them, so browser bundles stay free of node:*.
    const fs = (await import(/* @vite-ignore */ FS_MODULE)) as typeof import('node:fs/promises');
    const path = (await import(/* @vite-ignore */ PATH_MODULE)) as typeof import('node:path');
    const os = (await import(/* @vite-ignore */ OS_MODULE)) as typeof import('node:os');
    const root = dir ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'tensorpeft', 'rewrites');
    return { fs, path, root };
  };
  return {
    async get(key) {
      const { fs, path, root } = await paths();
      try {
        const meta = JSON.parse(await fs.readFile(path.join(root, `${key}.json`), 'utf8')) as RewriteMeta & { sha256: string };
        const bytes = new Uint8Array(await fs.readFile(path.join(root, `${key}.onnx`)));
        return { bytes, meta };
      } catch {
        return undefined;
      }
    },
    async put(key, bytes, meta) {
      const { fs, path, root } = await paths();
      await fs.mkdir(root, { recursive: true });
      const tmp = `.${key}.${process.pid}.${Date.now()}`;
      await fs.writeFile(path.join(root, `${tmp}.onnx`), bytes);
      await fs.rename(path.join(root, `${tmp}.onnx`), path.join(root, `${key}.onnx`));
      // Meta last: an entry exists only once both files are complete.
      await fs.writeFile(path.join(root, `${tmp}.json`), JSON.stringify(meta));
      await fs.rename(path.join(root, `${tmp}.json`), path.join(root, `${key}.json`));
    },
  };
}

/** Browsers: Cache Storage (`caches.open(name)`), under synthetic URLs `/__tensorpeft_rewrite__/<key>`. */
export function cacheStorageRewriteStore(name = 'tensorpeft-rewrites'): RewriteStore {
  const url = (key: string, ext: string) => `https://tensorpeft.invalid/__tensorpeft_rewrite__/${key}.${ext}`;
  const open = () => (globalThis as unknown as { caches: { open(n: string): Promise<Cache> } }).caches.open(name);
  return {
    async get(key) {
      const c = await open();
      const m = await c.match(url(key, 'json'));
      const b = await c.match(url(key, 'onnx'));
      if (!m || !b) return undefined;
      try {
        return { meta: (await m.json()) as RewriteMeta & { sha256: string }, bytes: new Uint8Array(await b.arrayBuffer()) };
      } catch {
        return undefined;
      }
    },
    async put(key, bytes, meta) {
      const c = await open();
      await c.put(url(key, 'onnx'), new Response(bytes as Uint8Array<ArrayBuffer>));
      await c.put(url(key, 'json'), new Response(JSON.stringify(meta)));
    },
  };
}

/** The store an option names (undefined: no caching). */
export function resolveRewriteStore(opt: RewriteCacheOption | undefined, isNode: boolean): RewriteStore | undefined {
  if (opt === undefined || opt === false) return undefined;
  if (typeof opt === 'object') return opt;
  if (typeof opt === 'string') return folderRewriteStore(opt);
  if (isNode) return folderRewriteStore();
  return typeof (globalThis as { caches?: unknown }).caches === 'object' ? cacheStorageRewriteStore() : undefined;
}

const EDGE = 64 * 1024;

/**
 * The check stored with an entry: its length and the SHA-256 of its first and last 64 KiB. It
 * catches torn and truncated entries (the writes are atomic renames, so those are the failures to
 * expect) at a fixed cost; hashing the whole entry again would cost as much as the rewrite it
 * replaces. A deliberate edit inside the cache folder is not detected: it is as trusted as the model.
 */
async function entryCheck(bytes: Uint8Array): Promise<string> {
  let edges = bytes;
  if (bytes.length > 2 * EDGE) {
    edges = new Uint8Array(2 * EDGE);
    edges.set(bytes.subarray(0, EDGE));
    edges.set(bytes.subarray(bytes.length - EDGE), EDGE);
  }
  return `${bytes.length}:${await sha256Hex(edges)}`;
}

/**
 * The rewrite of `modelBytes` through `store`: a verified hit, else `rewrite()` stored for next time.
 * Store failures (read-only folder, quota) never fail the load: the rewrite result is used as is.
 */
export async function cachedRewrite(
  store: RewriteStore,
  modelBytes: Uint8Array,
  targets: readonly string[],
  mode: string,
  rewrite: () => RewriteResult,
): Promise<RewriteResult & { cached: boolean }> {
  const key = await rewriteKey(modelBytes, targets, mode);
  const hit = await store.get(key).catch(() => undefined);
  if (hit && hit.meta && typeof hit.meta.sha256 === 'string' && (await entryCheck(hit.bytes)) === hit.meta.sha256) {
    const { sha256: _sha, ...meta } = hit.meta;
    return { ...(meta as RewriteMeta), bytes: hit.bytes, cached: true };
  }
  const r = rewrite();
  const { bytes, ...meta } = r;
  await store.put(key, bytes, { ...meta, sha256: await entryCheck(bytes) }).catch(() => undefined);
  return { ...r, cached: false };
}
