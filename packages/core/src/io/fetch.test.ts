/**
 * The loader against a loopback HTTP server that misbehaves on purpose: resets, stalls, redirects,
 * lies about lengths. Each failure must be a typed FetchError naming the URL.
 */
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdapterFormatError, FetchError, FetchRedirectError, FetchTimeoutError, SizeLimitError } from '../errors.js';
import '../methods/all.js';
import { adapterStats } from './adapter.js';
import { fetchBytes } from './fetch.js';
import { loadAdapter } from './load.js';
import { hubFileUrl, isHubRepoId, readAdapterFiles, type FileProgress } from './source.js';

const DISTIL = fileURLToPath(new URL('../../../../fixtures/peft-real/distilbert-lora-emotion', import.meta.url));

async function rejection(p: Promise<unknown>): Promise<Error> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e, 'expected a rejection').toBeInstanceOf(Error);
  return e as Error;
}

type Handler = (req: IncomingMessage, res: ServerResponse, path: string) => void;

async function serve(handler: Handler): Promise<{ server: Server; base: string }> {
  const server = createServer((req, res) => {
    res.on('error', () => undefined);
    handler(req, res, new URL(req.url ?? '/', 'http://x').pathname);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

async function close(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

describe('fetchBytes / loadAdapter against a misbehaving server', () => {
  let main: { server: Server; base: string };
  let other: { server: Server; base: string };
  const files = new Map<string, Buffer>();
  const hubRequests: string[] = [];

  beforeAll(async () => {
    for (const f of ['adapter_config.json', 'adapter_model.safetensors']) files.set(f, await readFile(join(DISTIL, f)));
    // A second origin (another port) for redirects.
    other = await serve((_req, res, path) => {
      const name = path.split('/').pop()!;
      const body = files.get(name);
      if (body) res.writeHead(200, { 'content-length': String(body.length) }).end(body);
      else res.writeHead(404).end();
    });
    main = await serve((req, res, path) => {
      const parts = path.split('/').filter(Boolean);
      const mode = parts[0];
      const body = files.get(parts[parts.length - 1] ?? '');
      switch (mode) {
        case 'ok':
          if (!body) res.writeHead(404).end();
          else res.writeHead(200, { 'content-length': String(body.length) }).end(body);
          return;
        case 'reset':
          // Declares 10 000 bytes, sends 100, then drops the connection.
          res.writeHead(200, { 'content-length': '10000' });
          res.write(Buffer.alloc(100, 7), () => setTimeout(() => req.socket.destroy(), 20));
          return;
        case 'silent':
          return; // never answers
        case 'stall':
          res.writeHead(200, { 'content-length': '10000' });
          res.write(Buffer.alloc(100, 7));
          return; // never sends the rest
        case 'huge':
          // Declares 5 GB: must be refused before reading (or allocating) anything.
          res.writeHead(200, { 'content-length': String(5 * 1024 ** 3) });
          res.write(Buffer.alloc(1000));
          return;
        case 'same':
          res.writeHead(302, { location: `/ok/${parts.slice(1).join('/')}` }).end();
          return;
        case 'cross':
          res.writeHead(302, { location: `${other.base}/${parts.slice(1).join('/')}` }).end();
          return;
        case 'loop':
          res.writeHead(302, { location: `/loop/${parts.slice(1).join('/')}` }).end();
          return;
        case 'hub': {
          // A stand-in for the Hub: /hub/<user>/<repo>/resolve/<rev>/<file>, LFS files redirected to another origin.
          hubRequests.push(path);
          const [, user, repo, resolve, rev, file] = parts;
          if (user !== 'alice' || repo !== 'emotion-lora' || resolve !== 'resolve' || rev !== 'v1.0' || !body) {
            res.writeHead(404).end();
            return;
          }
          if (file === 'adapter_model.safetensors') res.writeHead(302, { location: `${other.base}/lfs/${file}` }).end();
          else res.writeHead(200, { 'content-length': String(body.length) }).end(body);
          return;
        }
        default:
          res.writeHead(404).end();
      }
    });
  });

  afterAll(async () => {
    await close(main.server);
    await close(other.server);
  });

  it('a connection reset in the middle of the body is a FetchError naming the URL (D10)', async () => {
    const url = `${main.base}/reset/adapter_model.safetensors`;
    const e = await rejection(fetchBytes(url, 1_000_000));
    expect(e).toBeInstanceOf(FetchError);
    expect(e.message).toContain(url);
    expect(e.message).toContain('100 bytes received');
    expect((e as FetchError).code).toBe('FETCH_FAILED');
  });

  it('no response headers within the connect timeout: FetchTimeoutError', async () => {
    const url = `${main.base}/silent/x`;
    const e = await rejection(fetchBytes(url, { connectTimeoutMs: 150 }));
    expect(e).toBeInstanceOf(FetchTimeoutError);
    expect(e.message).toContain(url);
    expect(e.message).toContain('150 ms');
  });

  it('a body that stops arriving: FetchTimeoutError after the idle timeout', async () => {
    const url = `${main.base}/stall/x`;
    const e = await rejection(fetchBytes(url, { idleTimeoutMs: 150 }));
    expect(e).toBeInstanceOf(FetchTimeoutError);
    expect(e.message).toContain('100 bytes received');
  });

  it('a declared length over the cap is refused before the body is read', async () => {
    const e = await rejection(fetchBytes(`${main.base}/huge/x`, 1_000_000));
    expect(e).toBeInstanceOf(SizeLimitError);
    expect(e).toBeInstanceOf(FetchError);
    expect(e.message).toContain(`Content-Length ${5 * 1024 ** 3}`);
  });

  it('redirects: same origin followed, another origin refused by default, allowed by option', async () => {
    const ok = await fetchBytes(`${main.base}/same/adapter_config.json`);
    expect(Buffer.from(ok).equals(files.get('adapter_config.json')!)).toBe(true);

    const e = await rejection(fetchBytes(`${main.base}/cross/adapter_config.json`));
    expect(e).toBeInstanceOf(FetchRedirectError);
    expect(e.message).toContain(`${other.base}/adapter_config.json`);
    expect(e.message).toContain(main.base);

    for (const opts of [{ redirect: 'follow' as const }, { allowedOrigins: [other.base] }]) {
      const b = await fetchBytes(`${main.base}/cross/adapter_config.json`, opts);
      expect(Buffer.from(b).equals(files.get('adapter_config.json')!)).toBe(true);
    }
    const none = await rejection(fetchBytes(`${main.base}/same/adapter_config.json`, { redirect: 'error' }));
    expect(none).toBeInstanceOf(FetchRedirectError);
    const loop = await rejection(fetchBytes(`${main.base}/loop/x`));
    expect(loop).toBeInstanceOf(FetchRedirectError);
    expect(loop.message).toContain('too many redirects');
  });

  it('a Hub id resolves through remoteHost + remotePathTemplate at a revision (CDN redirect followed)', async () => {
    const hub = { remoteHost: `${main.base}/hub/`, remotePathTemplate: '{model}/resolve/{revision}/' };
    expect(hubFileUrl('alice/emotion-lora', 'adapter_config.json', hub, 'v1.0')).toBe(`${main.base}/hub/alice/emotion-lora/resolve/v1.0/adapter_config.json`);
    const events: FileProgress[] = [];
    const a = await loadAdapter('alice/emotion-lora', { hub, revision: 'v1.0', onProgress: (e) => events.push(e) });
    expect(adapterStats(a)).toEqual(adapterStats(await loadAdapter(DISTIL)));
    expect(a.source).toBe('alice/emotion-lora@v1.0');
    expect(hubRequests).toContain('/hub/alice/emotion-lora/resolve/v1.0/adapter_model.safetensors');
    const done = events.filter((e) => e.status === 'done').map((e) => e.file);
    expect(done).toEqual([hubFileUrl('alice/emotion-lora', 'adapter_config.json', hub, 'v1.0'), hubFileUrl('alice/emotion-lora', 'adapter_model.safetensors', hub, 'v1.0')]);
    const last = events.filter((e) => e.status === 'progress').pop()!;
    expect(last.loaded).toBe(files.get('adapter_model.safetensors')!.length);
    // Without hub options the same string is a local path (no network).
    const local = await rejection(loadAdapter('alice/emotion-lora'));
    expect(local).toBeInstanceOf(AdapterFormatError);
    expect(local.message).toContain('not found');
    // A wrong revision is the Hub's 404, typed.
    const missing = await rejection(loadAdapter('alice/emotion-lora', { hub, revision: 'nope' }));
    expect(missing).toBeInstanceOf(FetchError);
    expect(missing.message).toContain('found 404');
  });

  it('relative URLs resolve against baseUrl', async () => {
    const a = await loadAdapter('/ok/adapter_config.json', { baseUrl: `${main.base}/page/index.html` });
    expect(a.source).toBe(`${main.base}/ok`);
    const b = await loadAdapter('../ok', { baseUrl: `${main.base}/page/index.html` });
    expect(adapterStats(b)).toEqual(adapterStats(a));
  });

  it('Files / FileList / Blobs: picked by name, size-capped before reading', async () => {
    const part = (name: string): Uint8Array<ArrayBuffer> => new Uint8Array(files.get(name)!);
    const cfg = new File([part('adapter_config.json')], 'adapter_config.json');
    const st = new File([part('adapter_model.safetensors')], 'adapter_model.safetensors');
    const readme = new File(['hi'], 'README.md');
    const a = await loadAdapter([readme, st, cfg]);
    expect(adapterStats(a)).toEqual(adapterStats(await loadAdapter(DISTIL)));
    const b = await loadAdapter({ config: new Blob([part('adapter_config.json')]), safetensors: new Blob([part('adapter_model.safetensors')]) });
    expect(adapterStats(b)).toEqual(adapterStats(a));
    const big = await rejection(loadAdapter([cfg, st], { maxBytes: 1000 }));
    expect(big).toBeInstanceOf(AdapterFormatError);
    expect(big.message).toContain('size limit');
    const notAdapter = await rejection(readAdapterFiles([readme, cfg]));
    expect(notAdapter).toBeInstanceOf(AdapterFormatError);
    expect(notAdapter.message).toContain('README.md');
  });

  it('Hub ids are told from paths', () => {
    for (const id of ['alice/emotion-lora', 'Org_1/model.v2', 'a/b']) expect(isHubRepoId(id), id).toBe(true);
    for (const s of ['./a/b', '/a/b', 'a', 'a/b/c', 'a/../b', 'a--b/c', '../x/y', 'a/b.']) expect(isHubRepoId(s), s).toBe(false);
  });
});
