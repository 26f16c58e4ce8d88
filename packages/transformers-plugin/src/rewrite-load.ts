/**
 * One `.onnx` through the load-time rewrite, as fast as the runtime allows (issue 16):
 * - the original is read once (`read`), never decoded whole: branch mode splices the weights through
 *   (proto-splice.ts) and joins the parts into one buffer of exactly their size, which the plugin
 *   hands to transformers.js without another copy (`ownedBytesResponse`);
 * - with a rewrite store, a hit in Node is the stored file's path: transformers.js gives it to ONNX
 *   Runtime as it gives the path of an unrewritten model, so nothing crosses JS; and a local model
 *   whose hash the store remembers by file identity (`modelHashOf`) is not even read. A miss on a
 *   local file is hashed and rewritten file to file (proto-splice-file.ts: no model-sized buffer)
 *   and hands over the stored file; other misses write the parts (no joined copy).
 * Models with ONNX external data are never handed over as a path: ONNX Runtime looks for the side
 * files next to the model file, which the cache folder does not hold.
 */
import { rewriteParts, joinParts } from './proto-splice.js';
import { rewriteFileToFile, sha256File } from './proto-splice-file.js';
import type { RewriteOptions } from './rewrite-types.js';
import { IS_NODE } from './model-files.js';
import { entryCheckOfFile, entryCheckOfParts, entryCheck, rewriteKeyOf, sha256Hex, type RewriteMeta, type RewriteStore, type StoredMeta } from './rewrite-cache.js';

export interface LoadedRewrite {
  meta: RewriteMeta;
  /** Set when a store was used: whether the entry was a hit. */
  cached?: boolean;
  /** The rewritten model, either as bytes (one buffer of exactly its size) or as a stored file. */
  bytes?: Uint8Array;
  file?: string;
}

export interface LoadRewriteArgs {
  /** Reads the original `.onnx` (undefined: not there). Called at most once. */
  read(): Promise<Uint8Array | undefined>;
  opts: RewriteOptions;
  store?: RewriteStore | undefined;
  /** The mode part of the cache key (e.g. `branch`, `branch+mixed`). */
  cacheMode: string;
  /** A local file the original is read from (Node), for the store's file-identity hash memo. */
  localFile?: string | undefined;
  /** The caller can take a file path (Node). */
  acceptsFile?: boolean;
}

const metaOf = (r: RewriteMeta): RewriteMeta => ({ branches: r.branches, params: r.params, merged: r.merged });

/** The rewrite of one model, through `store` when given (see the module comment); undefined when the original is not there. */
export async function loadRewrite(a: LoadRewriteArgs): Promise<LoadedRewrite | undefined> {
  const { store, opts } = a;
  if (!store) {
    const bytes = await a.read();
    if (!bytes) return undefined;
    const r = rewriteParts(bytes, opts);
    return { meta: metaOf(r), bytes: r.parts.length === 1 ? r.parts[0]! : joinParts(r) };
  }
  const targets = opts.targets;
  let bytes: Uint8Array | undefined;
  // A local file into a store that writes entries from files (Node): hashed and rewritten file to
  // file, never held in memory whole (proto-splice-file.ts); anything else: the bytes.
  const fileToFile = a.localFile !== undefined && a.acceptsFile === true && store.writeEntry !== undefined;
  let model = a.localFile && store.modelHashOf ? await store.modelHashOf(a.localFile).catch(() => undefined) : undefined;
  if (model === undefined && fileToFile) model = await sha256File(a.localFile!).catch(() => undefined);
  if (model === undefined) {
    bytes = await a.read();
    if (!bytes) return undefined;
    model = await sha256Hex(bytes);
  }
  if (a.localFile && store.rememberModelHash) await store.rememberModelHash(a.localFile, model).catch(() => undefined);
  let key = await rewriteKeyOf(model, targets, a.cacheMode, opts.branchDtype);
  const hit = await cachedEntry(store, key, a.acceptsFile === true);
  if (hit) return hit;
  if (fileToFile && !bytes) {
    let meta: RewriteMeta | undefined;
    const file = await store
      .writeEntry!(key, async (tmp) => {
        const r = await rewriteFileToFile(a.localFile!, tmp, opts);
        // Not spliceable, or external data (never handed over as a path): the bytes path below.
        if (!r || r.external) throw new Error('not written file to file');
        meta = metaOf(r);
        return { ...meta, external: false };
      })
      .catch(() => undefined);
    if (file && meta) return { meta, cached: false, file };
  }
  if (!bytes) {
    // The remembered hash named no (valid) entry: read the model, and key by what it holds now.
    bytes = await a.read();
    if (!bytes) return undefined;
    model = await sha256Hex(bytes);
    key = await rewriteKeyOf(model, targets, a.cacheMode, opts.branchDtype);
    if (a.localFile && store.rememberModelHash) await store.rememberModelHash(a.localFile, model).catch(() => undefined);
  }
  const r = rewriteParts(bytes, opts);
  const meta: StoredMeta = { ...metaOf(r), sha256: await entryCheckOfParts(r.parts), external: r.external };
  if (a.acceptsFile && !r.external && store.putParts) {
    try {
      return { meta: metaOf(r), cached: false, file: await store.putParts(key, r.parts, meta) };
    } catch {
      // A read-only or full cache folder never fails the load: the bytes go over instead.
    }
  }
  const joined = r.parts.length === 1 ? r.parts[0]! : joinParts(r);
  await store.put(key, joined, meta).catch(() => undefined);
  return { meta: metaOf(r), cached: false, bytes: joined };
}

/** A verified entry of `store` (as a file where allowed and the model has no external data). */
async function cachedEntry(store: RewriteStore, key: string, acceptsFile: boolean): Promise<LoadedRewrite | undefined> {
  const strip = (m: StoredMeta): RewriteMeta => metaOf(m);
  if (acceptsFile && store.getFile) {
    const f = await store.getFile(key).catch(() => undefined);
    if (f && typeof f.meta?.sha256 === 'string' && f.meta.external === false && (await entryCheckOfFile(f.size, f.edges)) === f.meta.sha256) {
      return { meta: strip(f.meta), cached: true, file: f.path };
    }
  }
  const hit = await store.get(key).catch(() => undefined);
  if (hit && hit.meta && typeof hit.meta.sha256 === 'string' && (await entryCheck(hit.bytes)) === hit.meta.sha256) {
    return { meta: strip(hit.meta), cached: true, bytes: hit.bytes };
  }
  return undefined;
}

/**
 * A Response for rewritten bytes, with Content-Length (without it transformers.js' `readResponse`
 * grows its buffer chunk by chunk). Where `bytes` spans its whole ArrayBuffer, `arrayBuffer()`
 * returns that buffer itself: transformers.js reads model files with `arrayBuffer()` and wraps the
 * result, so the rewritten model reaches ONNX Runtime without a copy through the Response body (Node).
 */
export function ownedBytesResponse(bytes: Uint8Array): Response {
  const res = new Response(bytes as Uint8Array<ArrayBuffer>, { headers: { 'Content-Length': String(bytes.byteLength) } });
  const buf = bytes.buffer;
  // Node only: onnxruntime-node reads the buffer in place; ORT-web's proxy worker may transfer
  // (detach) what it gets, which would empty the plugin's memo for transformers.js' second ask.
  if (IS_NODE && buf instanceof ArrayBuffer && bytes.byteOffset === 0 && bytes.byteLength === buf.byteLength) {
    Object.defineProperty(res, 'arrayBuffer', { value: () => Promise.resolve(buf), configurable: true });
  }
  return res;
}
