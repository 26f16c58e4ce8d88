import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, FetchError } from '../errors.js';
import '../methods/all.js';
import { adapterStats } from './adapter.js';
import { fetchBytes, loadAdapter } from './load.js';

const DISTIL = fileURLToPath(new URL('../../../../fixtures/peft-real/distilbert-lora-emotion', import.meta.url));

async function rejection(p: Promise<unknown>): Promise<Error> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e, 'expected a rejection').toBeInstanceOf(Error);
  return e as Error;
}

describe('loadAdapter over HTTP', () => {
  let server: Server;
  let base: string;
  const files = new Map<string, Buffer>();
  let requests = 0;

  beforeAll(async () => {
    for (const f of ['adapter_config.json', 'adapter_model.safetensors']) files.set(f, await readFile(join(DISTIL, f)));
    server = createServer((req, res) => {
      requests++;
      const url = new URL(req.url ?? '/', 'http://x');
      const [, mode, name] = url.pathname.split('/');
      const body = files.get(name ?? '');
      if (!body) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not here');
        return;
      }
      if (mode === 'plain') {
        res.writeHead(200, { 'content-length': String(body.length) }).end(body);
      } else if (mode === 'chunked') {
        // No Content-Length: the client must count streamed bytes.
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        const step = 64 * 1024;
        let off = 0;
        const pump = (): void => {
          while (off < body.length) {
            const ok = res.write(body.subarray(off, off + step));
            off += step;
            if (!ok) {
              res.once('drain', pump);
              return;
            }
          }
          res.end();
        };
        res.on('error', () => undefined);
        pump();
      } else if (mode === 'badjson') {
        res.writeHead(200).end(name === 'adapter_config.json' ? '{"peft_type":' : body);
      } else {
        res.writeHead(404).end();
      }
    });
    server.keepAliveTimeout = 100;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('loads both files from a URL base (with or without a trailing slash)', async () => {
    const local = adapterStats(await loadAdapter(DISTIL));
    for (const url of [`${base}/plain`, `${base}/plain/`, `${base}/chunked`, `${base}/plain/adapter_config.json`]) {
      const a = await loadAdapter(url);
      expect(adapterStats(a)).toEqual(local);
      expect(a.source).toBe(url.includes('chunked') ? `${base}/chunked` : `${base}/plain`);
    }
    expect(requests).toBeGreaterThanOrEqual(8);
  });

  it('rejects by Content-Length before reading the body', async () => {
    const e = await rejection(loadAdapter(`${base}/plain`, { maxBytes: 1_000_000 }));
    expect(e).toBeInstanceOf(FetchError);
    expect(e.message).toContain(`${base}/plain/adapter_model.safetensors`);
    expect(e.message).toContain('expected ≤ 1000000 bytes');
    expect(e.message).toContain(`Content-Length ${files.get('adapter_model.safetensors')!.length}`);
  });

  it('rejects while streaming when there is no Content-Length', async () => {
    const e = await rejection(fetchBytes(`${base}/chunked/adapter_model.safetensors`, 200_000));
    expect(e).toBeInstanceOf(FetchError);
    expect(e.message).toContain(`${base}/chunked/adapter_model.safetensors`);
    expect(e.message).toContain('more than 200000 bytes received');
    const ok = await fetchBytes(`${base}/chunked/adapter_model.safetensors`, 3_000_000);
    expect(ok.length).toBe(files.get('adapter_model.safetensors')!.length);
  });

  it('404 is a FetchError naming the URL and the status', async () => {
    const e = await rejection(loadAdapter(`${base}/missing`));
    expect(e).toBeInstanceOf(FetchError);
    expect(e.message).toMatch(new RegExp(`${base}/missing/adapter_(config\\.json|model\\.safetensors)`));
    expect(e.message).toContain('expected 2xx');
    expect(e.message).toContain('found 404');
  });

  it('a malformed config over HTTP names the URL', async () => {
    const e = await rejection(loadAdapter(`${base}/badjson`));
    expect(e).toBeInstanceOf(ConfigError);
    expect(e.message).toContain(`${base}/badjson/adapter_config.json`);
  });

  it('network failures are FetchErrors', async () => {
    const failing: typeof fetch = async () => {
      throw new TypeError('connection refused');
    };
    const e = await rejection(loadAdapter('https://example.invalid/a', { fetch: failing }));
    expect(e).toBeInstanceOf(FetchError);
    expect(e.message).toContain('connection refused');
    expect(e.message).toContain('https://example.invalid/a/adapter_');
  });
});
