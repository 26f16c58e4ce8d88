/**
 * Reading a model file for the load-time rewrite, the way transformers.js would have read it:
 * remote URLs with `fetch` (redirects followed, as transformers.js does: the Hub serves from CDN
 * hosts), local model paths from the file system in Node and, in browsers, as URLs relative to the
 * page (`env.localModelPath = '/models/'` is served by the app's own server). Absent files are
 * `undefined` (transformers.js then tries its next location); network failures are typed errors.
 */
import { FetchError, fetchBytes } from '@tensorpeft/core';

/** Node (or a runtime with Node's modules). */
export const IS_NODE = typeof process !== 'undefined' && typeof process.versions?.node === 'string';

// A specifier in a variable: bundlers do not follow `import(variable)`, so a browser bundle has no
// `node:*` import; this path runs in Node only.
const FS_MODULE = 'node:fs/promises';

export function isUrl(s: string): boolean {
  return /^https?:\/\//i.test(s);
}

function documentBase(): string | undefined {
  const g = globalThis as { document?: { baseURI?: string }; location?: { href?: string } };
  return g.document?.baseURI ?? g.location?.href;
}

/** GET `url` (no size cap: models are as large as they are); an HTTP error status is "not here". */
async function fetchModelFile(url: string): Promise<Uint8Array | undefined> {
  try {
    return await fetchBytes(url, { maxBytes: Number.POSITIVE_INFINITY, redirect: 'follow' });
  } catch (e) {
    // fetchBytes' HTTP status error (expected 2xx): transformers.js falls back, as on its own 404s.
    if (e instanceof FetchError && e.details.expected === '2xx') return undefined;
    throw e;
  }
}

export interface ModelFileEnv {
  allowRemoteModels?: boolean;
  allowLocalModels?: boolean;
}

/**
 * The bytes of model file `key` (a local path or an http(s) URL), or undefined when it is not there.
 * `runtime` is where local paths live: the file system (Node) or the page's server (browsers).
 */
export async function readModelFile(key: string, env: ModelFileEnv, runtime: 'node' | 'browser' = IS_NODE ? 'node' : 'browser'): Promise<Uint8Array | undefined> {
  if (isUrl(key)) return env.allowRemoteModels === false ? undefined : fetchModelFile(key);
  if (env.allowLocalModels === false) return undefined;
  if (runtime === 'browser') {
    const base = documentBase();
    return base === undefined ? undefined : fetchModelFile(new URL(key, base).href);
  }
  const fs = (await import(/* @vite-ignore */ FS_MODULE)) as typeof import('node:fs/promises');
  try {
    const b = await fs.readFile(key);
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  } catch {
    return undefined;
  }
}
