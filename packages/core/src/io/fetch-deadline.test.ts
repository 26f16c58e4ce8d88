/**
 * Issue 15: a total deadline on downloads (a server dripping bytes just inside the idle timeout
 * never trips it) and the size cap on decoded bytes of a compressed body (a gzip bomb), both against
 * loopback servers.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FetchTimeoutError, SizeLimitError } from '../errors.js';
import { fetchBytes } from './fetch.js';

async function rejection(p: Promise<unknown>): Promise<Error> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e, 'expected a rejection').toBeInstanceOf(Error);
  return e as Error;
}

describe('fetchBytes: total deadline and decoded-size cap', () => {
  let server: Server;
  let base = '';
  const timers = new Set<ReturnType<typeof setInterval>>();
  // 64 MiB of zeros gzip to ~64 KiB: a 1 MiB cap must stop it on the decoded bytes.
  const bomb = gzipSync(new Uint8Array(64 << 20));

  beforeAll(async () => {
    server = createServer((_req: IncomingMessage, res: ServerResponse) => {
      res.on('error', () => undefined);
      const path = new URL(_req.url ?? '/', 'http://x').pathname;
      if (path === '/drip') {
        // 256 bytes every 100 ms, forever: never idle for the 1 s idle timeout.
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        const t = setInterval(() => res.write(new Uint8Array(256)), 100);
        timers.add(t);
        res.on('close', () => (clearInterval(t), timers.delete(t)));
      } else if (path === '/bomb') {
        res.writeHead(200, { 'content-encoding': 'gzip', 'content-length': String(bomb.length) }).end(bomb);
      } else if (path === '/small') {
        res.writeHead(200, { 'content-length': '5' }).end('hello');
      } else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    for (const t of timers) clearInterval(t);
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('a slow drip ends in a FetchTimeoutError of the total deadline, with the bytes received so far', async () => {
    const e = await rejection(fetchBytes(`${base}/drip`, { idleTimeoutMs: 1000, timeoutMs: 800 }));
    expect(e).toBeInstanceOf(FetchTimeoutError);
    expect(e.message).toContain('total timeout');
    expect(e.message).toContain(`${base}/drip`);
    expect(e.message).toContain('within 800 ms');
    // It dripped for ~800 ms (some chunks arrived) and was cut before the end that never comes.
    const got = Number(/(\d+) bytes received/.exec(e.message)?.[1]);
    expect(got).toBeGreaterThan(0);
    expect(got % 256).toBe(0);
  });

  it('the total deadline also bounds the wait for headers when it is shorter than the connect timeout', async () => {
    const stall = createServer(() => undefined);
    await new Promise<void>((resolve) => stall.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(stall.address() as AddressInfo).port}/x`;
      const e = await rejection(fetchBytes(url, { connectTimeoutMs: 60_000, timeoutMs: 300 }));
      expect(e).toBeInstanceOf(FetchTimeoutError);
      expect(e.message).toContain('total timeout');
    } finally {
      stall.closeAllConnections();
      await new Promise<void>((resolve) => stall.close(() => resolve()));
    }
  });

  it('a download that finishes inside the deadline is returned whole', async () => {
    const b = await fetchBytes(`${base}/small`, { timeoutMs: 5000 });
    expect(new TextDecoder().decode(b)).toBe('hello');
  });

  it('a gzip bomb is a SizeLimitError on the decoded bytes, not a timeout', async () => {
    const e = await rejection(fetchBytes(`${base}/bomb`, { maxBytes: 1 << 20, idleTimeoutMs: 1000, timeoutMs: 20_000 }));
    expect(e).toBeInstanceOf(SizeLimitError);
    expect(e.message).toContain(`more than ${1 << 20} bytes received`);
  });
});
