/**
 * Shared harness of the tests that run in headless Chromium (kernels-wasm, kernels-wgsl, the
 * playground e2e): Debian's Chromium at /usr/bin/chromium (another binary via TENSORPEFT_CHROMIUM)
 * driven by playwright-core with a fresh profile, a node:http server on 127.0.0.1 (optionally
 * cross-origin isolated with COOP/COEP), and esbuild bundling of a browser entry. Never
 * `npx playwright install`: without Chromium every test fails saying how to install it (no skips).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { build } from 'esbuild';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll } from 'vitest';

export { revive, wire } from './wire.js';

export const CHROMIUM = process.env.TENSORPEFT_CHROMIUM ?? '/usr/bin/chromium';

/** Why Chromium cannot run (with the install instruction), or undefined when it is there. */
export const chromiumMissing: string | undefined = existsSync(CHROMIUM)
  ? undefined
  : `headless Chromium is needed for this test and ${CHROMIUM} is missing: apt-get install -y chromium`;

/** Every test fails (never skips) without Chromium, saying how to install it. */
export function needChromium(): void {
  if (chromiumMissing) throw new Error(chromiumMissing);
}

/** Flags of every launch (headless comes from playwright's `headless: true`). */
export const CHROMIUM_ARGS: readonly string[] = ['--no-sandbox', '--disable-gpu-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic', '--no-first-run'];

/** Response headers that make the page cross-origin isolated (SharedArrayBuffer, threads). */
export const COOP_COEP: Readonly<Record<string, string>> = { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' };

/** A served file: [content-type, body]. */
export type ServedFile = [string, Uint8Array | string];

/** Serve a fixed map of URL path → file. */
export function fromFiles(files: Record<string, ServedFile>): (pathname: string) => ServedFile | undefined {
  return (pathname) => files[pathname];
}

/**
 * A node:http server on 127.0.0.1 (a free port) answering each URL path with `lookup(pathname)`,
 * 404 'not found' when it returns undefined; `headers` are added to every 200 response.
 */
export async function serve(lookup: (pathname: string) => ServedFile | undefined, headers: Record<string, string> = {}): Promise<{ server: Server; origin: string }> {
  const server = createServer((req, res) => {
    const f = lookup(new URL(req.url ?? '/', 'http://127.0.0.1').pathname);
    if (!f) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': f[0], ...headers }).end(f[1]);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  return { server, origin: `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}` };
}

/** esbuild bundle (ESM, es2022, in memory) of a browser entry, with `@tensorpeft/core` from source. */
export async function bundleEntry(entry: string, root: string): Promise<Uint8Array> {
  const bundle = await build({
    entryPoints: [entry],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    logLevel: 'silent',
    alias: { '@tensorpeft/core': path.join(root, 'packages/core/src/index.ts') },
    // core reads local files through dynamic `import('node:…')` that only Node ever reaches.
    external: ['node:*'],
  });
  return bundle.outputFiles[0]!.contents;
}

export interface LaunchOptions {
  /** Flags added to CHROMIUM_ARGS (e.g. '--enable-unsafe-webgpu'). */
  extraArgs?: string[];
  viewport?: { width: number; height: number };
  /** Prefix of the fresh --user-data-dir under the OS tmpdir. */
  profilePrefix?: string;
}

export interface Browser {
  context: BrowserContext;
  page: Page;
  /** Messages of uncaught page errors. */
  pageErrors: string[];
  /** Close the browser and remove its profile. */
  close(): Promise<void>;
}

/** Launch headless Chromium on a fresh profile; the first page collects uncaught errors. */
export async function launchChromium(opts: LaunchOptions = {}): Promise<Browser> {
  const profile = mkdtempSync(path.join(tmpdir(), opts.profilePrefix ?? 'tensorpeft-chromium-'));
  let context: BrowserContext | undefined;
  const close = async () => {
    await context?.close();
    rmSync(profile, { recursive: true, force: true });
  };
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      ...(opts.viewport ? { viewport: opts.viewport } : {}),
      args: [...CHROMIUM_ARGS, ...(opts.extraArgs ?? [])],
    });
    const page = context.pages()[0] ?? (await context.newPage());
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    return { context, page, pageErrors, close };
  } catch (e) {
    await close();
    throw e;
  }
}

export interface BrowserTestOptions {
  /** What the server answers (run in beforeAll, so it may build first), and headers of every 200. */
  site: () => Promise<{ lookup: (pathname: string) => ServedFile | undefined; headers?: Record<string, string> }>;
  launch?: LaunchOptions;
  /** Once launched, open `${origin}/` and wait (20 s) until the page defines this global. */
  pageGlobal?: string;
  /** beforeAll's timeout (ms). */
  timeout: number;
}

/** What `useBrowserTest` sets up; filled in by its beforeAll. */
export interface BrowserTest {
  origin: string;
  page: Page;
  /** Messages of uncaught page errors. */
  pageErrors: string[];
}

/**
 * Register the vitest beforeAll/afterAll of a headless-Chromium test file: serve `site` on
 * 127.0.0.1, launch Chromium, optionally open the page and wait for its global; afterAll closes
 * the browser, the server and removes the profile. Without Chromium nothing starts (the tests call
 * needChromium()).
 */
export function useBrowserTest(opts: BrowserTestOptions): BrowserTest {
  const t = { origin: '', pageErrors: [] } as unknown as BrowserTest;
  let server: Server | undefined;
  let browser: Browser | undefined;
  beforeAll(async () => {
    if (chromiumMissing) return;
    const { lookup, headers } = await opts.site();
    ({ server, origin: t.origin } = await serve(lookup, headers));
    browser = await launchChromium(opts.launch);
    ({ page: t.page, pageErrors: t.pageErrors } = browser);
    if (opts.pageGlobal !== undefined) {
      await t.page.goto(`${t.origin}/`);
      await t.page.waitForFunction((g) => g in globalThis, opts.pageGlobal, { timeout: 20_000 });
    }
  }, opts.timeout);
  afterAll(async () => {
    await browser?.close();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  });
  return t;
}
