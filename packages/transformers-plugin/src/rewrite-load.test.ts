/**
 * The load path of a rewrite (rewrite-load.ts, wired in cache.ts): the original read at most once,
 * a Node cache hit handed over as the cached file's path, a local model whose hash the store
 * remembers not read at all, external-data models never handed over as a path, and rewritten bytes
 * handed to transformers.js without a copy.
 */
import { mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, expect, test } from 'vitest';
import onnxProto from 'onnx-proto';
import { makeModel, writeModel } from '@tensorpeft/model-gen';
import { rewriteModel } from './rewrite.js';
import { folderRewriteStore } from './rewrite-cache.js';
import { loadRewrite, ownedBytesResponse } from './rewrite-load.js';
import { joinParts, rewriteParts } from './proto-splice.js';
import { rewriteFileToFile, sha256File } from './proto-splice-file.js';
import { createHash } from 'node:crypto';
import { enableAdapters } from './cache.js';

const { onnx } = onnxProto;
const canonical = (b: Uint8Array) => Buffer.from(onnx.ModelProto.encode(onnx.ModelProto.decode(b)).finish());

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function tmp(): Promise<string> {
  const d = await mkdtemp(path.join(tmpdir(), 'tp-rwload-'));
  dirs.push(d);
  return d;
}

test('no store: one read, the spliced rewrite in one buffer of exactly its size, same model as the full rewrite', async () => {
  const m = makeModel({ arch: 'distilbert', size: 'tiny', quantized: false });
  const bytes = m.files.get('onnx/model.onnx')!;
  const targets = m.shape.modules.map((x) => x.path);
  let reads = 0;
  const r = (await loadRewrite({ read: async () => (reads++, bytes), opts: { targets }, cacheMode: 'branch' }))!;
  expect(reads).toBe(1);
  expect(r.cached).toBeUndefined();
  expect(r.bytes!.byteOffset).toBe(0);
  expect(r.bytes!.byteLength).toBe(r.bytes!.buffer.byteLength);
  expect(canonical(r.bytes!).equals(canonical(rewriteModel(bytes, { targets }).bytes))).toBe(true);
  // Handed over without a copy: arrayBuffer() is the buffer itself.
  expect(await ownedBytesResponse(r.bytes!).arrayBuffer()).toBe(r.bytes!.buffer);
  // A view into a larger buffer is copied as a Response body would be.
  const view = new Uint8Array(new ArrayBuffer(16), 4, 8).fill(7);
  const copy = await ownedBytesResponse(view).arrayBuffer();
  expect(copy).not.toBe(view.buffer);
  expect([...new Uint8Array(copy)]).toEqual([...view]);
});

test('folder store, local file: a miss is hashed and rewritten file to file (the model never read into memory) and handed over; a hit by remembered file identity reads nothing; a touched model is hashed again', async () => {
  const root = await tmp();
  const m = await writeModel({ arch: 'bert', size: 'tiny', quantized: false, seed: 4 }, path.join(root, 'bert'));
  const file = path.join(root, 'bert', 'onnx', 'model.onnx');
  const targets = m.shape.modules.map((x) => x.path);
  const store = folderRewriteStore(path.join(root, 'cache'));
  let reads = 0;
  const read = async () => {
    reads++;
    return new Uint8Array(await readFile(file));
  };
  const args = { read, opts: { targets }, store, cacheMode: 'branch', localFile: file, acceptsFile: true };
  const first = (await loadRewrite(args))!;
  expect(reads).toBe(0);
  expect(first.cached).toBe(false);
  expect(first.file).toMatch(new RegExp(`^${path.join(root, 'cache')}/[0-9a-f]{64}-[0-9a-f]{16}\\.onnx$`));
  const stored = new Uint8Array(await readFile(first.file!));
  const ref = rewriteModel(new Uint8Array(await readFile(file)), { targets });
  expect(canonical(stored).equals(canonical(ref.bytes))).toBe(true);
  expect(first.meta.branches).toEqual(ref.branches);

  const second = (await loadRewrite(args))!;
  expect(reads).toBe(0);
  expect(second).toEqual({ meta: first.meta, cached: true, file: first.file });

  // Same bytes, new mtime: the identity memo misses, the model is hashed (streamed), the entry hits.
  const later = new Date(Date.now() + 5000);
  await utimes(file, later, later);
  const third = (await loadRewrite(args))!;
  expect(reads).toBe(0);
  expect(third.cached).toBe(true);
  expect(third.file).toBe(first.file);

  // Another model under the same path and identity memo gone stale (new bytes, new mtime): a miss.
  const other = makeModel({ arch: 'bert', size: 'tiny', quantized: false, seed: 5 }).files.get('onnx/model.onnx')!;
  await writeFile(file, other);
  const fourth = (await loadRewrite(args))!;
  expect(reads).toBe(0);
  expect(fourth.cached).toBe(false);
  expect(fourth.file).not.toBe(first.file);

  // A torn entry (cut short): refused by the entry check, rewritten.
  const entry = fourth.file!;
  const full = await readFile(entry);
  await writeFile(entry, full.subarray(0, full.length - 10));
  const fifth = (await loadRewrite(args))!;
  expect(fifth.cached).toBe(false);
  expect((await readFile(entry)).equals(full)).toBe(true);
  // The same store given bytes only (no local file): read once, the same entry.
  const viaBytes = (await loadRewrite({ ...args, localFile: undefined }))!;
  expect(reads).toBe(1);
  expect(viaBytes).toEqual({ meta: fourth.meta, cached: true, file: fourth.file });
});

test('rewriteFileToFile writes exactly the bytes of the in-memory splice, on every dtype file of a model; external data and merge mode are left to the bytes path', async () => {
  const root = await tmp();
  const m = await writeModel({ arch: 'llama', size: 'tiny', quantized: true, dtypes: ['fp16', 'q4f16'], seed: 9 }, path.join(root, 'llama'));
  const targets = m.shape.modules.map((x) => x.path);
  for (const f of ['model.onnx', 'model_quantized.onnx', 'model_fp16.onnx', 'model_q4f16.onnx']) {
    const src = path.join(root, 'llama', 'onnx', f);
    const dest = path.join(root, `out-${f}`);
    const r = (await rewriteFileToFile(src, dest, { targets }))!;
    const mem = rewriteParts(new Uint8Array(await readFile(src)), { targets });
    expect(Buffer.from(await readFile(dest)).equals(Buffer.from(joinParts(mem))), f).toBe(true);
    expect(r.branches, f).toEqual(mem.branches);
    expect(r.byteLength, f).toBe(mem.byteLength);
    expect(r.external, f).toBe(false);
  }
  expect(await sha256File(path.join(root, 'llama', 'onnx', 'model.onnx'))).toBe(createHash('sha256').update(await readFile(path.join(root, 'llama', 'onnx', 'model.onnx'))).digest('hex'));
  const ext = await writeModel({ arch: 'bert', size: 'tiny', quantized: false, externalData: true }, path.join(root, 'ext'));
  const r = (await rewriteFileToFile(path.join(root, 'ext', 'onnx', 'model.onnx'), path.join(root, 'ext-out.onnx'), { targets: ext.shape.modules.map((x) => x.path) }))!;
  expect(r.external).toBe(true);
  expect(await rewriteFileToFile(path.join(root, 'ext', 'onnx', 'model.onnx'), path.join(root, 'merge-out.onnx'), { targets: ext.shape.modules.map((x) => x.path), mode: 'merge' })).toBeUndefined();
});

test('external data: stored and served as bytes, never as a path away from the side files', async () => {
  const root = await tmp();
  const m = makeModel({ arch: 'bert', size: 'tiny', quantized: false, externalData: true });
  const bytes = m.files.get('onnx/model.onnx')!;
  const targets = m.shape.modules.map((x) => x.path);
  const store = folderRewriteStore(path.join(root, 'cache'));
  const args = { read: async () => bytes, opts: { targets }, store, cacheMode: 'branch', acceptsFile: true };
  const first = (await loadRewrite(args))!;
  expect(first.file).toBeUndefined();
  expect(first.cached).toBe(false);
  const second = (await loadRewrite(args))!;
  expect(second.file).toBeUndefined();
  expect(second.cached).toBe(true);
  expect(Buffer.from(second.bytes!).equals(Buffer.from(first.bytes!))).toBe(true);
});

test('enableAdapters in Node: the cache answers a rewrite-cache hit with the cached file path (transformers.js hands it to ONNX Runtime)', async () => {
  const root = await tmp();
  await writeModel({ arch: 'distilbert', size: 'tiny', quantized: false }, path.join(root, 'db'));
  const key = path.join(root, 'db', 'onnx', 'model.onnx');
  const ask = async () => {
    const env = { useCustomCache: false, customCache: null as unknown, allowLocalModels: true, allowRemoteModels: false };
    const restore = enableAdapters(env, { rewriteCache: path.join(root, 'cache') });
    try {
      return await (env.customCache as { match(k: string): Promise<unknown> }).match(key);
    } finally {
      restore();
    }
  };
  const first = await ask();
  const second = await ask();
  expect(typeof first).toBe('string');
  expect(second).toBe(first);
  expect(first as string).toMatch(/\/cache\/[0-9a-f]{64}-[0-9a-f]{16}\.onnx$/);
  // Without a cache: bytes in a Response (no file is written).
  const env = { useCustomCache: false, customCache: null as unknown, allowLocalModels: true, allowRemoteModels: false };
  const restore = enableAdapters(env, {});
  try {
    expect((await (env.customCache as { match(k: string): Promise<unknown> }).match(key)) instanceof Response).toBe(true);
  } finally {
    restore();
  }
});
