/**
 * Hostile HTTP servers on loopback, one behaviour each, against core's `loadAdapter` URL path.
 * The adapter folder is served from `/a/`; the behaviour applies to `adapter_model.safetensors`
 * (the config is served plainly, except where the behaviour says otherwise). Every run is bounded:
 * a 5 s watchdog per case, and every server is closed (sockets destroyed) afterwards.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { gzipSync } from 'node:zlib';
import { loadAdapter } from '@tensorpeft/core';
import { errorOutcome, type Outcome } from './classify.js';

export const BEHAVIOURS = [
  'ok',
  'not-found',
  'server-error',
  'slow-drip',
  'stall-before-headers',
  'stall-mid-body',
  'silent-close',
  'reset-mid-body',
  'length-longer-than-body',
  'length-shorter-than-body',
  'huge-declared-length',
  'chunked-over-cap',
  'gzip-bomb',
  'redirect-same-origin',
  'redirect-other-origin',
  'redirect-loop',
  'garbage-body',
  'html-body',
] as const;
export type Behaviour = (typeof BEHAVIOURS)[number];

/** What a sound loader does with each behaviour (typed refusal, or a correct load). */
export const EXPECTED: Record<Behaviour, 'accepted' | 'typed'> = {
  ok: 'accepted',
  'not-found': 'typed',
  'server-error': 'typed',
  // 256 bytes every 100 ms: never idle for the 1 s idle timeout, but > 5 s in all. A loader with
  // only connect/idle timeouts keeps reading; the watchdog reports it as a hang.
  'slow-drip': 'typed',
  'stall-before-headers': 'typed',
  'stall-mid-body': 'typed',
  'silent-close': 'typed',
  'reset-mid-body': 'typed',
  'length-longer-than-body': 'typed',
  'length-shorter-than-body': 'typed',
  'huge-declared-length': 'typed',
  'chunked-over-cap': 'typed',
  'gzip-bomb': 'typed',
  'redirect-same-origin': 'accepted',
  'redirect-other-origin': 'typed',
  'redirect-loop': 'typed',
  'garbage-body': 'typed',
  'html-body': 'typed',
};

// timeoutMs: the total deadline per file, under the 5 s watchdog (the slow drip is never idle for 1 s).
export const LOADER_OPTIONS = { maxBytes: 1 << 20, connectTimeoutMs: 1000, idleTimeoutMs: 1000, timeoutMs: 3000 };
const WATCHDOG_MS = 5000;

interface Served {
  url: string;
  close: () => Promise<void>;
}

async function listen(handler: http.RequestListener): Promise<Served> {
  const sockets = new Set<Socket>();
  const server = http.createServer(handler);
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Serve `files` under `/a/` with `behaviour` on the weights file; `other` is a second origin. */
async function hostile(behaviour: Behaviour, files: { config: string; safetensors: Uint8Array }, other: Served): Promise<Served> {
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const later = (ms: number, fn: () => void) => {
    const t = setTimeout(() => (timers.delete(t), fn()), ms);
    timers.add(t);
  };
  const st = files.safetensors;
  const served = await listen((req, res) => {
    const path = req.url ?? '/';
    if (path.endsWith('/adapter_config.json')) {
      res.writeHead(200, { 'content-type': 'application/json' }).end(files.config);
      return;
    }
    if (!path.endsWith('/adapter_model.safetensors') && !path.startsWith('/moved')) {
      res.writeHead(404).end();
      return;
    }
    if (path.startsWith('/moved')) {
      res.writeHead(200, { 'content-length': String(st.length) }).end(st);
      return;
    }
    switch (behaviour) {
      case 'ok':
        res.writeHead(200, { 'content-length': String(st.length) }).end(st);
        return;
      case 'not-found':
        res.writeHead(404).end('nope');
        return;
      case 'server-error':
        res.writeHead(500).end('boom');
        return;
      case 'slow-drip': {
        res.writeHead(200, { 'content-length': String(st.length * 64) });
        let i = 0;
        const drip = () => {
          if (res.destroyed || i > 200) return void res.destroy();
          res.write(new Uint8Array(256));
          i++;
          later(100, drip);
        };
        drip();
        return;
      }
      case 'stall-before-headers':
        return; // never answers
      case 'stall-mid-body':
        res.writeHead(200, { 'content-length': String(st.length) });
        res.write(st.subarray(0, st.length >> 1));
        return; // then nothing
      case 'silent-close':
        req.socket.destroy();
        return;
      case 'reset-mid-body':
        res.writeHead(200, { 'content-length': String(st.length) });
        res.write(st.subarray(0, st.length >> 1), () => later(20, () => req.socket.destroy()));
        return;
      case 'length-longer-than-body':
        res.writeHead(200, { 'content-length': String(st.length + 1000) });
        res.write(st, () => later(20, () => req.socket.destroy()));
        return;
      case 'length-shorter-than-body': {
        // Declares less than it sends: HTTP/1.1 framing cuts the body at the declared length.
        res.writeHead(200, { 'content-length': String(st.length >> 1) });
        req.socket.write(st);
        req.socket.end();
        return;
      }
      case 'huge-declared-length':
        res.writeHead(200, { 'content-length': String(1e12) });
        res.write(st.subarray(0, 64));
        return;
      case 'chunked-over-cap': {
        res.writeHead(200);
        let sent = 0;
        const pump = () => {
          while (sent < 4 << 20) {
            sent += 65536;
            if (!res.write(new Uint8Array(65536))) return void res.once('drain', pump);
          }
          res.end();
        };
        pump();
        return;
      }
      case 'gzip-bomb': {
        const bomb = gzipBomb();
        res.writeHead(200, { 'content-encoding': 'gzip', 'content-length': String(bomb.length) }).end(bomb);
        return;
      }
      case 'redirect-same-origin':
        res.writeHead(302, { location: '/moved/adapter_model.safetensors' }).end();
        return;
      case 'redirect-other-origin':
        res.writeHead(302, { location: `${other.url}/moved/adapter_model.safetensors` }).end();
        return;
      case 'redirect-loop':
        res.writeHead(302, { location: path }).end();
        return;
      case 'garbage-body': {
        const g = Uint8Array.from({ length: 4096 }, (_, i) => (i * 7919) & 255);
        res.writeHead(200, { 'content-length': String(g.length) }).end(g);
        return;
      }
      case 'html-body':
        res.writeHead(200, { 'content-type': 'text/html' }).end('<html><body>Sign in</body></html>');
        return;
    }
  });
  return {
    url: served.url,
    close: async () => {
      for (const t of timers) clearTimeout(t);
      await served.close();
    },
  };
}

export interface HttpResult {
  behaviour: Behaviour;
  outcome: Outcome;
  expected: 'accepted' | 'typed';
  ms: number;
  /** The outcome is what a sound loader gives. */
  ok: boolean;
}

/** Run every behaviour once against `loadAdapter(url)`. */
/**
 * 64 MiB of zeros gzipped (~64 KiB), made once before any server runs: compressing it inside the
 * request handler blocked this process (client included) past the 1 s connect timeout, so the bomb
 * ended in a FetchTimeoutError before its decoded size was ever checked.
 */
let BOMB: Uint8Array | undefined;
function gzipBomb(): Uint8Array {
  BOMB ??= gzipSync(new Uint8Array(64 << 20));
  return BOMB;
}

export async function httpCampaign(files: { config: string; safetensors: Uint8Array }, behaviours: readonly Behaviour[] = BEHAVIOURS): Promise<HttpResult[]> {
  const results: HttpResult[] = [];
  if (behaviours.includes('gzip-bomb')) gzipBomb();
  const other = await listen((req, res) => {
    res.writeHead(200, { 'content-length': String(files.safetensors.length) }).end(files.safetensors);
  });
  try {
    for (const b of behaviours) {
      const server = await hostile(b, files, other);
      const t0 = performance.now();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const watchdog = new Promise<Outcome>((resolve) => {
        timer = setTimeout(() => resolve({ kind: 'hang', message: `no answer within ${WATCHDOG_MS} ms` }), WATCHDOG_MS);
      });
      const run = loadAdapter(`${server.url}/a/`, LOADER_OPTIONS as never).then(
        (): Outcome => ({ kind: 'accepted' }),
        (e: unknown) => errorOutcome(e),
      );
      const outcome = await Promise.race([run, watchdog]);
      clearTimeout(timer);
      const ms = performance.now() - t0;
      await server.close();
      // A hung load is abandoned with its server closed (its socket errors out later, untracked).
      run.catch(() => undefined);
      results.push({ behaviour: b, outcome, expected: EXPECTED[b], ms, ok: outcome.kind === EXPECTED[b] });
    }
  } finally {
    await other.close();
  }
  return results;
}
