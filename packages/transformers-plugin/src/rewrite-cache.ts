/**
 * A cache of rewritten models (issue 16): the second load of a model skips the protobuf decode /
 * rewrite / encode. Keyed by the SHA-256 of the original `.onnx` bytes, `REWRITE_VERSION`, the mode
 * and the targeted module paths; the stored bytes carry their length and a hash of their edges,
 * checked on every read, so a torn or truncated cache file is rewritten again instead of reaching
 * ONNX Runtime.
 * Stores: a folder in Node (`folderRewriteStore`), Cache Storage in browsers (`cacheStorageRewriteStore`).
 * Branch mode only: merge mode needs the base weights decoded in this process anyway.
 */
import type { BranchDtype, RewriteResult } from './rewrite-types.js';

/**
 * Bumped whenever the rewrite changes what it writes for the same input (new inputs, node layout,
 * field order): entries written by another version are never read. Pinned with the SHA-256 of the
 * rewrite of two hand-built models (rewrite-pin.json, test-utils/pin-models.ts): a change of the
 * output without a bump fails rewrite-pin.test.ts; scripts/pin-rewrite.mts re-pins after a bump.
 * 2: the spliced rewrite (proto-splice.ts: initializer records after the graph's other fields).
 * 3: fp32 side branches on fp16 graphs for CPU sessions (`branchDtype`, branch-dtype.ts).
 * 4: sibling fusion (`fuseSiblings`, rewrite-siblings.ts: `tensorpeft.siblings:…` inputs), pinned on a q/k/v block.
 */
export const REWRITE_VERSION = 4;

/** What the load path reports about a rewrite (stored next to the bytes). */
export type RewriteMeta = Omit<RewriteResult, 'bytes'>;

/** What a store keeps next to an entry: the rewrite's meta, the entry check, and whether the model has external data. */
export type StoredMeta = RewriteMeta & { sha256: string; external?: boolean };

export interface RewriteStore {
  /** The bytes and meta stored under `key`, or undefined. */
  get(key: string): Promise<{ bytes: Uint8Array; meta: StoredMeta } | undefined>;
  put(key: string, bytes: Uint8Array, meta: StoredMeta): Promise<void>;
  /**
   * Optional (the Node folder store has it): the entry's file instead of its bytes. In Node the
   * plugin hands transformers.js that path, and ONNX Runtime reads the file itself, as it reads an
   * unrewritten model: no copy through JS.
   */
  getFile?(key: string): Promise<{ path: string; size: number; edges: Uint8Array; meta: StoredMeta } | undefined>;
  /** Optional: store an entry given as parts (the spliced rewrite, not joined into one buffer); returns its file. */
  putParts?(key: string, parts: readonly Uint8Array[], meta: StoredMeta): Promise<string>;
  /**
   * Optional (Node folder store): store an entry that `write` writes to the temporary file it is
   * given (returning the meta but the entry check, which the store computes from the file); returns
   * the entry's file. A throwing `write` stores nothing.
   */
  writeEntry?(key: string, write: (tmpFile: string) => Promise<Omit<StoredMeta, 'sha256'>>): Promise<string>;
  /**
   * Optional: the model hash remembered for a local file by its identity (absolute path, size,
   * mtime, inode), so a cached load neither reads nor hashes the model; what `make` and git's index
   * trust too (a rewrite of the file keeping size and mtime to the nanosecond is not noticed).
   */
  modelHashOf?(file: string): Promise<string | undefined>;
  rememberModelHash?(file: string, sha256: string): Promise<void>;
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

/**
 * The cache key of a rewrite: model hash, rewrite version, mode, targets (order-independent) and the
 * branch precision (`RewriteOptions.branchDtype`: an fp16 graph rewritten with fp32 branches for a
 * CPU session is another entry than its fp16-branch rewrite for WebGPU).
 */
export async function rewriteKey(modelBytes: Uint8Array, targets: readonly string[], mode: string, branchDtype: BranchDtype = 'activation'): Promise<string> {
  return rewriteKeyOf(await sha256Hex(modelBytes), targets, mode, branchDtype);
}

/** `rewriteKey` from the model's SHA-256 (hex). */
export async function rewriteKeyOf(model: string, targets: readonly string[], mode: string, branchDtype: BranchDtype = 'activation'): Promise<string> {
  const spec = JSON.stringify({ v: REWRITE_VERSION, mode, targets: [...new Set(targets)].sort(), branch_dtype: branchDtype });
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
  const putParts = async (key: string, parts: readonly Uint8Array[], meta: StoredMeta): Promise<string> => {
    const { fs, path, root } = await paths();
    await fs.mkdir(root, { recursive: true });
    const tmp = `.${key}.${process.pid}.${Date.now()}`;
    // writev of the parts: the spliced model is written without joining it into one buffer.
    const h = await fs.open(path.join(root, `${tmp}.onnx`), 'w');
    try {
      for (let i = 0; i < parts.length; i += 512) await h.writev(parts.slice(i, i + 512) as Uint8Array[]);
    } finally {
      await h.close();
    }
    await fs.rename(path.join(root, `${tmp}.onnx`), path.join(root, `${key}.onnx`));
    // Meta last: an entry exists only once both files are complete.
    await fs.writeFile(path.join(root, `${tmp}.json`), JSON.stringify(meta));
    await fs.rename(path.join(root, `${tmp}.json`), path.join(root, `${key}.json`));
    return path.join(root, `${key}.onnx`);
  };
  return {
    async get(key) {
      const { fs, path, root } = await paths();
      try {
        const meta = JSON.parse(await fs.readFile(path.join(root, `${key}.json`), 'utf8')) as StoredMeta;
        const b = await fs.readFile(path.join(root, `${key}.onnx`));
        // A view, not `new Uint8Array(b)` (a copy of the whole model).
        const bytes = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
        return { bytes, meta };
      } catch {
        return undefined;
      }
    },
    async put(key, bytes, meta) {
      await putParts(key, [bytes], meta);
    },
    async getFile(key) {
      const { fs, path, root } = await paths();
      try {
        const meta = JSON.parse(await fs.readFile(path.join(root, `${key}.json`), 'utf8')) as StoredMeta;
        const file = path.join(root, `${key}.onnx`);
        const h = await fs.open(file, 'r');
        try {
          const { size } = await h.stat();
          return { path: file, size, edges: await readEdges(h, size), meta };
        } finally {
          await h.close();
        }
      } catch {
        return undefined;
      }
    },
    putParts,
    async writeEntry(key, write) {
      const { fs, path, root } = await paths();
      await fs.mkdir(root, { recursive: true });
      const tmp = path.join(root, `.${key}.${process.pid}.${Date.now()}.onnx`);
      try {
        const meta = await write(tmp);
        const h = await fs.open(tmp, 'r');
        let check: string;
        try {
          const { size } = await h.stat();
          check = await entryCheckOfFile(size, await readEdges(h, size));
        } finally {
          await h.close();
        }
        const file = path.join(root, `${key}.onnx`);
        await fs.rename(tmp, file);
        const tmpMeta = path.join(root, `.${key}.${process.pid}.${Date.now()}.json`);
        await fs.writeFile(tmpMeta, JSON.stringify({ ...meta, sha256: check }));
        await fs.rename(tmpMeta, path.join(root, `${key}.json`));
        return file;
      } catch (e) {
        await fs.rm(tmp, { force: true });
        throw e;
      }
    },
    async modelHashOf(file) {
      const { fs, path, root } = await paths();
      try {
        const id = await fileIdentity(file);
        const sha = (await fs.readFile(path.join(root, 'by-file', `${id}.sha256`), 'utf8')).trim();
        return /^[0-9a-f]{64}$/.test(sha) ? sha : undefined;
      } catch {
        return undefined;
      }
    },
    async rememberModelHash(file, sha256) {
      const { fs, path, root } = await paths();
      const dir = path.join(root, 'by-file');
      await fs.mkdir(dir, { recursive: true });
      const id = await fileIdentity(file);
      const tmp = path.join(dir, `.${id}.${process.pid}.${Date.now()}`);
      await fs.writeFile(tmp, sha256);
      await fs.rename(tmp, path.join(dir, `${id}.sha256`));
    },
  };
}

/** A local file's identity for `modelHashOf`: the SHA-256 of its absolute path, size, mtime (ns), inode and device. */
async function fileIdentity(file: string): Promise<string> {
  const fs = (await import(/* @vite-ignore */ FS_MODULE)) as typeof import('node:fs/promises');
  const path = (await import(/* @vite-ignore */ PATH_MODULE)) as typeof import('node:path');
  const st = await fs.stat(file, { bigint: true });
  const id = JSON.stringify({ file: path.resolve(file), size: String(st.size), mtime: String(st.mtimeNs), ino: String(st.ino), dev: String(st.dev) });
  return sha256Hex(new TextEncoder().encode(id));
}

/** The first and last `EDGE` bytes of an open file of `size` bytes (the whole file when smaller than both). */
async function readEdges(h: import('node:fs/promises').FileHandle, size: number): Promise<Uint8Array> {
  const n = Math.min(size, 2 * EDGE);
  const out = new Uint8Array(n);
  if (size <= 2 * EDGE) {
    await h.read(out, 0, n, 0);
    return out;
  }
  await h.read(out, 0, EDGE, 0);
  await h.read(out, EDGE, EDGE, size - EDGE);
  return out;
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
        return { meta: (await m.json()) as StoredMeta, bytes: new Uint8Array(await b.arrayBuffer()) };
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
export async function entryCheck(bytes: Uint8Array): Promise<string> {
  return entryCheckOfParts([bytes]);
}

/** `entryCheck` of the concatenation of `parts` (without making it). */
export async function entryCheckOfParts(parts: readonly Uint8Array[]): Promise<string> {
  let size = 0;
  for (const p of parts) size += p.length;
  const n = Math.min(size, 2 * EDGE);
  const edges = new Uint8Array(n);
  // Bytes [0, head) and [size - (n - head), size) of the concatenation.
  const head = Math.min(size, EDGE);
  const tailFrom = size - (n - head);
  let off = 0;
  for (const p of parts) {
    const a = off;
    const b = off + p.length;
    if (a < head) edges.set(p.subarray(0, Math.min(b, head) - a), a);
    if (b > tailFrom) {
      const from = Math.max(a, tailFrom);
      edges.set(p.subarray(from - a), head + (from - tailFrom));
    }
    off = b;
  }
  return `${size}:${await sha256Hex(edges)}`;
}

/** `entryCheck` of a stored file from its size and edges (`getFile`). */
export async function entryCheckOfFile(size: number, edges: Uint8Array): Promise<string> {
  return `${size}:${await sha256Hex(edges)}`;
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
