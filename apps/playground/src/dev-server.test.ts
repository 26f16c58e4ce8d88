/**
 * `pnpm playground` (Vite's dev server) answers a missing file with HTTP 404, as the built app's
 * static host does, so the page reports "HTTP 404" for a mistyped adapter URL instead of failing to
 * parse index.html as JSON (the single-page fallback Vite uses by default).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer, type ViteDevServer } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const app = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
let server: ViteDevServer;
let origin: string;

beforeAll(async () => {
  server = await createServer({
    root: app,
    configFile: path.join(app, 'vite.config.ts'),
    logLevel: 'silent',
    server: { host: '127.0.0.1', port: 0, strictPort: false, hmr: false, watch: null },
    // Only the routing is under test: no dependency pre-bundling.
    optimizeDeps: { noDiscovery: true, include: [] },
  });
  await server.listen();
  const addr = server.httpServer!.address();
  origin = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
}, 60_000);
afterAll(async () => {
  await server?.close();
});

describe('playground dev server', () => {
  it('serves the page, and a 404 for a missing adapter file (also when fetch asks for anything, */*)', async () => {
    const page = await fetch(`${origin}/`, { headers: { accept: 'text/html' } });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('TensorPEFT playground');
    for (const accept of ['*/*', 'text/html,*/*']) {
      const r = await fetch(`${origin}/generated/adapters/no-such-adapter/adapter_config.json`, { headers: { accept } });
      expect({ accept, status: r.status }).toEqual({ accept, status: 404 });
    }
  });
});
