/**
 * Node: the spliced rewrite from a model file to a file, without holding the model in memory
 * (issue 16). The scanner of proto-splice.ts reads the source through a small window (positioned
 * reads), skipping the weights' `raw_data`; the output is written segment by segment, the
 * untouched initializer records copied from the source through one reused 4 MiB buffer. On the
 * 2-core test machine first touches of fresh memory cost ~15–30 ms per MB under load (page faults),
 * so not allocating a model-sized buffer is what makes a local model's first load through the
 * rewrite cache cheap. Also the model's SHA-256, streamed the same way.
 */
import { decodeLight, encodeSegments, type ByteSource, type ModelSegments } from './proto-splice.js';
import { rewriteModel } from './rewrite.js';
import { isExternal } from './external-data.js';
import type { RewriteOptions, RewriteResult } from './rewrite-types.js';

// Specifiers in variables: bundlers do not follow them (this module is reached from browser code,
// and runs in Node only).
const FS_MODULE = 'node:fs';
const CRYPTO_MODULE = 'node:crypto';
type Fs = typeof import('node:fs');

const CHUNK = 4 << 20;
const WINDOW = 1 << 16;

function readAll(fs: Fs, fd: number, out: Uint8Array, pos: number): void {
  let o = 0;
  while (o < out.length) {
    const n = fs.readSync(fd, out, o, out.length - o, pos + o);
    if (n <= 0) throw new Error(`model file ended at byte ${pos + o}, ${out.length - o} bytes short`);
    o += n;
  }
}

function fileSource(fs: Fs, fd: number, size: number): ByteSource {
  const win = new Uint8Array(WINDOW);
  let start = 0;
  let len = 0;
  return {
    length: size,
    byte(p) {
      if (p < start || p >= start + len) {
        start = p;
        len = fs.readSync(fd, win, 0, WINDOW, p);
        if (len <= 0) throw new Error(`model file ended at byte ${p}`);
      }
      return win[p - start]!;
    },
    bytes(a, b) {
      const out = new Uint8Array(b - a);
      readAll(fs, fd, out, a);
      return out;
    },
  };
}

export type FileRewrite = Omit<RewriteResult, 'bytes'> & { external: boolean; byteLength: number };

/**
 * The branch-mode rewrite of model file `src` written to `dest`; undefined (nothing written) where
 * the scanner leaves the model to the full decode path (then the caller reads the bytes).
 */
export async function rewriteFileToFile(src: string, dest: string, opts: RewriteOptions): Promise<FileRewrite | undefined> {
  if ((opts.mode ?? 'branch') !== 'branch') return undefined;
  const fs = (await import(/* @vite-ignore */ FS_MODULE)) as Fs;
  const fd = fs.openSync(src, 'r');
  try {
    const light = decodeLight(fileSource(fs, fd, fs.fstatSync(fd).size));
    if (!light) return undefined;
    let segs: ModelSegments | undefined;
    const { bytes: _none, ...info } = rewriteModel(light.model, opts, (m) => {
      segs = encodeSegments(light, m);
      return new Uint8Array(0);
    });
    const external = (light.model.graph?.initializer ?? []).some((t) => isExternal(t));
    const out = fs.openSync(dest, 'w');
    try {
      const buf = new Uint8Array(CHUNK);
      const write = (b: Uint8Array): void => {
        let o = 0;
        while (o < b.length) o += fs.writeSync(out, b, o, b.length - o);
      };
      for (const s of segs!.segments) {
        if (s instanceof Uint8Array) {
          write(s);
          continue;
        }
        for (let p = s[0]; p < s[1]; ) {
          const n = Math.min(CHUNK, s[1] - p);
          readAll(fs, fd, buf.subarray(0, n), p);
          write(buf.subarray(0, n));
          p += n;
        }
      }
    } finally {
      fs.closeSync(out);
    }
    return { ...info, external, byteLength: segs!.byteLength };
  } finally {
    fs.closeSync(fd);
  }
}

/** SHA-256 (hex) of a file, read through one reused buffer. */
export async function sha256File(file: string): Promise<string> {
  const fs = (await import(/* @vite-ignore */ FS_MODULE)) as Fs;
  const { createHash } = (await import(/* @vite-ignore */ CRYPTO_MODULE)) as typeof import('node:crypto');
  const h = createHash('sha256');
  const fd = fs.openSync(file, 'r');
  try {
    const buf = new Uint8Array(CHUNK);
    for (;;) {
      const n = fs.readSync(fd, buf, 0, CHUNK, null);
      if (n <= 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}
