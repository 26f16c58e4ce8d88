/**
 * The plugin's reads against a loopback HTTP server: adapter downloads with a progress callback
 * (the path that had no typed errors and no declared-length check: D11) and model files read the
 * way a browser build reads local model paths (fetched relative to the page, not with node:fs).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { buildShape, FetchError, FetchTimeoutError, SizeLimitError } from '@tensorpeft/core';
import { AdapterRegistry, type AdapterProgressInfo } from './plugin.js';
import { readModelFile } from './model-files.js';

let server: Server;
let base: string;
const requests: string[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    res.on('error', () => undefined);
    const url = req.url ?? '';
    requests.push(url);
    if (url.startsWith('/huge/')) {
      res.writeHead(200, { 'content-length': String(3 * 1024 ** 3) });
      res.write(Buffer.alloc(64));
      return;
    }
    if (url.startsWith('/reset/')) {
      res.writeHead(200, { 'content-length': '5000' });
      res.write(Buffer.alloc(10), () => setTimeout(() => req.socket.destroy(), 20));
      return;
    }
    if (url.startsWith('/silent/')) return;
    if (url.startsWith('/drip/')) {
      // 64 bytes every 50 ms, never ending: never idle long enough for the idle timeout.
      res.writeHead(200);
      const t = setInterval(() => res.write(Buffer.alloc(64)), 50);
      res.on('close', () => clearInterval(t));
      return;
    }
    if (url === '/app/models/bert/config.json') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"model_type":"bert"}');
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function registry(): AdapterRegistry {
  const shape = buildShape('bert', { hiddenSize: 8, numLayers: 1, numHeads: 2, numKvHeads: 2, intermediateSize: 16 });
  const names = ['input_ids'];
  const meta: Array<{ name: string; shape: Array<number | string> }> = [{ name: 'input_ids', shape: ['b', 's'] }];
  for (const m of shape.modules) {
    names.push(`tensorpeft.${m.path}.A`, `tensorpeft.${m.path}.B`);
    meta.push({ name: `tensorpeft.${m.path}.A`, shape: [m.in, 'r'] }, { name: `tensorpeft.${m.path}.B`, shape: ['r', m.out] });
  }
  return new AdapterRegistry([{ inputNames: names, inputMetadata: meta, run: async () => ({}) }]);
}

describe('adapter downloads with progress (D11)', () => {
  test('a declared length over the cap is refused before the body, typed, with progress on', async () => {
    const events: AdapterProgressInfo[] = [];
    const e = await registry()
      .load_adapter(`${base}/huge/a`, { adapter_name: 'a', max_file_bytes: 1_000_000, progress_callback: (x) => events.push(x) })
      .catch((x: unknown) => x);
    expect(e).toBeInstanceOf(SizeLimitError);
    expect(String(e)).toContain(`Content-Length ${3 * 1024 ** 3}`);
    // The config file was refused before any byte of it was counted as progress.
    expect(events.filter((x) => x.status === 'progress')).toEqual([]);
  });

  test('a reset mid-body and a server that never answers are typed errors, not TypeErrors', async () => {
    const reset = await registry()
      .load_adapter(`${base}/reset/a`, { adapter_name: 'a', progress_callback: () => undefined })
      .catch((x: unknown) => x);
    expect(reset).toBeInstanceOf(FetchError);
    expect(String(reset)).toContain(`${base}/reset/a/adapter_config.json`);
    const silent = await registry()
      .load_adapter(`${base}/silent/a`, { adapter_name: 'a', connect_timeout_ms: 150, progress_callback: () => undefined })
      .catch((x: unknown) => x);
    expect(silent).toBeInstanceOf(FetchTimeoutError);
  });

  test('timeout_ms: a server dripping bytes inside the idle timeout ends in a FetchTimeoutError of the total deadline', async () => {
    const e = await registry()
      .load_adapter(`${base}/drip/a`, { adapter_name: 'a', idle_timeout_ms: 1000, timeout_ms: 400, progress_callback: () => undefined })
      .catch((x: unknown) => x);
    expect(e).toBeInstanceOf(FetchTimeoutError);
    expect(String(e)).toContain('total timeout');
    expect(String(e)).toContain(`${base}/drip/a/adapter_config.json`);
  });

  test('a failed load frees its name', async () => {
    const reg = registry();
    await expect(reg.load_adapter(`${base}/reset/a`, { adapter_name: 'a' })).rejects.toBeInstanceOf(FetchError);
    await expect(reg.load_adapter(`${base}/reset/a`, { adapter_name: 'a' })).rejects.toThrow(/connection|declared|received/);
  });
});

describe('model files as a browser build reads them', () => {
  test('local model paths are fetched relative to the page; 404 is "not here"; the env switches are honoured', async () => {
    const g = globalThis as { document?: unknown };
    const saved = g.document;
    g.document = { baseURI: `${base}/app/index.html` };
    try {
      requests.length = 0;
      const cfg = await readModelFile('models/bert/config.json', { allowLocalModels: true }, 'browser');
      expect(new TextDecoder().decode(cfg)).toBe('{"model_type":"bert"}');
      expect(requests).toEqual(['/app/models/bert/config.json']);
      expect(await readModelFile('models/bert/onnx/model.onnx', { allowLocalModels: true }, 'browser')).toBeUndefined();
      requests.length = 0;
      expect(await readModelFile('models/bert/config.json', { allowLocalModels: false }, 'browser')).toBeUndefined();
      expect(await readModelFile(`${base}/app/models/bert/config.json`, { allowRemoteModels: false }, 'browser')).toBeUndefined();
      expect(requests).toEqual([]);
      expect(await readModelFile(`${base}/app/models/bert/config.json`, {}, 'browser')).toBeInstanceOf(Uint8Array);
    } finally {
      g.document = saved;
    }
  });
});
