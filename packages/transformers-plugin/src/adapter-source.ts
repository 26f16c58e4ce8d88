/** Reading an adapter folder (local path in Node, or http(s) URL) with progress events. */
import { adapterFromBytes, CONFIG_FILE, WEIGHTS_FILE, DEFAULT_MAX_BYTES, FetchError, type Adapter } from '@tensorpeft/core';
import type { AdapterProgressCallback } from './types.js';

function joinLocation(base: string, name: string): string {
  return base.endsWith('/') ? `${base}${name}` : `${base}/${name}`;
}

function isUrl2(s: string): boolean {
  return /^https?:\/\//i.test(s);
}

/** Read one adapter file with progress events (local path in Node, or http(s) URL). */
async function readWithProgress(file: string, name: string, cb: AdapterProgressCallback): Promise<Uint8Array> {
  cb({ status: 'initiate', name, file });
  let out: Uint8Array;
  if (isUrl2(file)) {
    const res = await fetch(file);
    if (!res.ok) throw new FetchError(`cannot load adapter "${name}": ${file}: HTTP ${res.status} ${res.statusText}`.trim());
    cb({ status: 'download', name, file });
    const total = Number(res.headers.get('content-length') ?? 0);
    const chunks: Uint8Array[] = [];
    let loaded = 0;
    if (res.body) {
      const reader = res.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        chunks.push(value);
        loaded += value.length;
        if (loaded > DEFAULT_MAX_BYTES) {
          await reader.cancel();
          throw new FetchError(`cannot load adapter "${name}": ${file} is larger than ${DEFAULT_MAX_BYTES} bytes`, { file, expected: `≤ ${DEFAULT_MAX_BYTES} bytes`, found: `> ${DEFAULT_MAX_BYTES} bytes` });
        }
        cb({ status: 'progress', name, file, loaded, total: total || loaded, progress: total ? (loaded / total) * 100 : 0 });
      }
    } else {
      chunks.push(new Uint8Array(await res.arrayBuffer()));
      loaded = chunks[0]!.length;
    }
    out = new Uint8Array(loaded);
    let off = 0;
    for (const c of chunks) {
      out.set(c, off);
      off += c.length;
    }
  } else {
    const fs = await import('node:fs/promises');
    const fh = await fs.open(file, 'r').catch((e: Error) => {
      throw new FetchError(`cannot load adapter "${name}": ${file}: ${e.message}`);
    });
    try {
      const total = (await fh.stat()).size;
      // Sized by the file system, still checked before the allocation.
      if (total > DEFAULT_MAX_BYTES) throw new FetchError(`cannot load adapter "${name}": ${file} is larger than ${DEFAULT_MAX_BYTES} bytes`, { file, expected: `≤ ${DEFAULT_MAX_BYTES} bytes`, found: `${total} bytes` });
      cb({ status: 'download', name, file });
      out = new Uint8Array(total);
      const CHUNK = 1 << 20;
      let loaded = 0;
      while (loaded < total) {
        const { bytesRead } = await fh.read(out, loaded, Math.min(CHUNK, total - loaded), loaded);
        if (bytesRead === 0) break;
        loaded += bytesRead;
        cb({ status: 'progress', name, file, loaded, total, progress: (loaded / total) * 100 });
      }
      if (total === 0) cb({ status: 'progress', name, file, loaded: 0, total: 0, progress: 100 });
    } finally {
      await fh.close();
    }
  }
  cb({ status: 'done', name, file });
  return out;
}

export async function loadSourceWithProgress(source: string, name: string, cb: AdapterProgressCallback): Promise<Adapter> {
  const strip = (s: string): string => {
    for (const f of [CONFIG_FILE, WEIGHTS_FILE]) if (s.endsWith(`/${f}`)) return s.slice(0, -f.length - 1);
    return s;
  };
  let base: string;
  let q = '';
  if (isUrl2(source)) {
    const u = new URL(source);
    u.pathname = strip(u.pathname);
    q = u.search;
    u.search = '';
    base = u.toString().replace(/\/+$/, '');
  } else {
    base = strip(source.replace(/\/+$/, '') || '/');
  }
  const config = await readWithProgress(`${joinLocation(base, CONFIG_FILE)}${q}`, name, cb);
  const safetensors = await readWithProgress(`${joinLocation(base, WEIGHTS_FILE)}${q}`, name, cb);
  return adapterFromBytes({ config, safetensors, source: base });
}
