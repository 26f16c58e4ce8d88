/**
 * End to end: builds the playground (scripts/prepare-assets.mjs + `vite build`), serves dist/ from
 * a node:http server on 127.0.0.1 with COOP/COEP, and drives Debian's Chromium headless through
 * playwright-core: waits for the model, swaps through every shipped adapter by clicking and back to
 * base, checks that each adapter changes the logits and that base comes back bit for bit, loads a
 * broken adapter file and checks the typed error (the app keeps working), saves a screenshot to
 * apps/playground/e2e-artifacts/.
 *
 * Needs /usr/bin/chromium (`apt-get install -y chromium`; another binary via TENSORPEFT_CHROMIUM);
 * never `npx playwright install`. Without it the test fails saying so (no skips).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { COOP_COEP, needChromium, useBrowserTest, type ServedFile } from '@tensorpeft/browser-harness';
import { describe, expect, it } from 'vitest';

const app = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(app, 'dist');
const artifacts = path.join(app, 'e2e-artifacts');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.css': 'text/css',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
};

const browser = useBrowserTest({
  site: async () => {
    execFileSync(process.execPath, [path.join(app, 'scripts/prepare-assets.mjs')], { cwd: app, stdio: 'pipe' });
    const { build } = await import('vite');
    await build({ root: app, configFile: path.join(app, 'vite.config.ts'), logLevel: 'error' });
    // dist/ as built, with COOP/COEP (the test checks crossOriginIsolated).
    const lookup = (pathname: string): ServedFile | undefined => {
      const rel = decodeURIComponent(pathname);
      const file = path.join(dist, rel.endsWith('/') ? `${rel}index.html` : rel);
      if (!file.startsWith(dist) || !existsSync(file) || !statSync(file).isFile()) return undefined;
      return [TYPES[path.extname(file)] ?? 'application/octet-stream', readFileSync(file)];
    };
    return { lookup, headers: COOP_COEP };
  },
  launch: { profilePrefix: 'tensorpeft-playground-', viewport: { width: 1200, height: 1000 }, extraArgs: ['--enable-unsafe-webgpu'] },
  timeout: 120_000,
});

/** Click the swap button of `name`, wait for the output of that adapter, return its logits. */
async function swapTo(name: string): Promise<number[]> {
  const before = Number((await browser.page.getAttribute('#output', 'data-seq')) ?? 0);
  await browser.page.click(`#swap-buttons button[data-adapter="${name}"]`);
  await browser.page.waitForFunction(
    ([n, s]) => {
      const el = document.querySelector<HTMLElement>('#output')!;
      return el.dataset.adapter === n && el.dataset.state === 'done' && Number(el.dataset.seq) > (s as number);
    },
    [name, before] as const,
    { timeout: 10_000 },
  );
  return JSON.parse((await browser.page.getAttribute('#output', 'data-logits'))!) as number[];
}

describe('playground in headless Chromium', () => {
  it('loads the model, swaps through every shipped adapter, restores base exactly, reports bad files', async () => {
    needChromium();
    const manifest = JSON.parse(readFileSync(path.join(dist, 'generated/adapters/index.json'), 'utf8')) as { adapters: { name: string }[] };
    const names = manifest.adapters.map((a) => a.name);
    expect(names.length).toBeGreaterThanOrEqual(6);

    await browser.page.goto(`${browser.origin}/`);
    await browser.page.waitForFunction(() => ['ready', 'error'].includes(document.querySelector<HTMLElement>('#status')!.dataset.state!), undefined, { timeout: 60_000 });
    expect(await browser.page.textContent('#status')).toMatch(/^Ready/);
    expect(await browser.page.evaluate(() => globalThis.crossOriginIsolated)).toBe(true);

    const base = JSON.parse((await browser.page.getAttribute('#output', 'data-logits'))!) as number[];
    expect(base.length).toBe(6);
    const seen = [base];
    for (const n of names) {
      const logits = await swapTo(n);
      expect(logits.length).toBe(6);
      for (const prev of seen) expect(logits, `${n} differs from every earlier output`).not.toEqual(prev);
      seen.push(logits);
      expect(await browser.page.textContent(`#adapters tr[data-adapter="${n}"] td:last-child`)).toMatch(/µs|ms/);
    }
    expect(await swapTo('base')).toEqual(base);
    // Swapping back to an adapter gives its output again.
    expect(await swapTo(names[0]!)).toEqual(seen[1]);
    // Keyboard shortcut: 2 = the second adapter, 0 = base.
    await browser.page.click('h1');
    await browser.page.keyboard.press('2');
    await browser.page.waitForFunction((n) => document.querySelector<HTMLElement>('#output')!.dataset.adapter === n, names[1]!, { timeout: 10_000 });
    await browser.page.keyboard.press('0');
    await browser.page.waitForFunction(() => document.querySelector<HTMLElement>('#output')!.dataset.adapter === 'base', undefined, { timeout: 10_000 });

    // A broken safetensors file: typed error shown, the app keeps working.
    const config = readFileSync(path.join(dist, `generated/adapters/${names[0]}/adapter_config.json`));
    await browser.page.setInputFiles('#file', [
      { name: 'adapter_config.json', mimeType: 'application/json', buffer: config },
      { name: 'adapter_model.safetensors', mimeType: 'application/octet-stream', buffer: Buffer.from([1, 2, 3]) },
    ]);
    await browser.page.waitForSelector('#error:not([hidden])', { timeout: 10_000 });
    expect(await browser.page.textContent('#error')).toMatch(/^AdapterFormatError: .*safetensors/);
    // A bad config: ConfigError naming peft_type.
    await browser.page.setInputFiles('#file', [
      { name: 'adapter_config.json', mimeType: 'application/json', buffer: Buffer.from('{"peft_type": "NOPE"}') },
      { name: 'adapter_model.safetensors', mimeType: 'application/octet-stream', buffer: Buffer.from([1, 2, 3]) },
    ]);
    await browser.page.waitForFunction(() => /ConfigError/.test(document.querySelector('#error')!.textContent ?? ''), undefined, { timeout: 10_000 });
    expect(await browser.page.textContent('#error')).toMatch(/^ConfigError: .*NOPE/);
    mkdirSync(artifacts, { recursive: true });
    await browser.page.screenshot({ path: path.join(artifacts, 'playground-error.png'), fullPage: true });
    expect(await swapTo('base')).toEqual(base);
    expect(await swapTo(names[1]!)).toEqual(seen[2]);

    // A good adapter through the file input is added and becomes active.
    const dir = path.join(dist, `generated/adapters/${names[2]}`);
    await browser.page.setInputFiles('#file', [
      { name: 'adapter_config.json', mimeType: 'application/json', buffer: readFileSync(path.join(dir, 'adapter_config.json')) },
      { name: 'adapter_model.safetensors', mimeType: 'application/octet-stream', buffer: readFileSync(path.join(dir, 'adapter_model.safetensors')) },
    ]);
    await browser.page.waitForFunction(() => document.querySelector<HTMLElement>('#drop')!.dataset.state === 'loaded', undefined, { timeout: 10_000 });
    const dropped = await browser.page.getAttribute('#output', 'data-adapter');
    expect(dropped).not.toBe(names[2]);
    expect(await swapTo(dropped!)).toEqual(seen[3]);
    expect(await browser.page.isHidden('#error')).toBe(true);

    // An adapter by URL (core's size-capped fetch) from the app's own server: a shipped folder, under a new name.
    await browser.page.fill('#adapter-url', `${browser.origin}/generated/adapters/${names[1]}/`);
    await browser.page.click('#load-url');
    await browser.page.waitForFunction(() => document.querySelector<HTMLElement>('#url-state')!.dataset.state === 'loaded', undefined, { timeout: 10_000 });
    const byUrl = await browser.page.getAttribute('#url-state', 'data-adapter');
    expect(byUrl).toBe(`${names[1]}-2`);
    expect(await swapTo(byUrl!)).toEqual(seen[2]);
    // A bad URL: core's typed FetchError (HTTP 404), the app keeps working.
    await browser.page.fill('#adapter-url', `${browser.origin}/generated/adapters/missing/`);
    await browser.page.click('#load-url');
    await browser.page.waitForFunction(() => document.querySelector<HTMLElement>('#url-state')!.dataset.state === 'error', undefined, { timeout: 10_000 });
    expect(await browser.page.textContent('#error')).toMatch(/^FetchError: .*404/);
    expect(await swapTo(names[0]!)).toEqual(seen[1]);
    // The Hub model field: no network here, so a Hub id fails with a shown error (or the offline
    // note) and the embedded model stays in use.
    await browser.page.fill('#hub-model', 'Xenova/not-a-model-here');
    await browser.page.click('#load-model');
    await browser.page.waitForFunction(() => document.querySelector<HTMLElement>('#model-state')!.dataset.state === 'error', undefined, { timeout: 30_000 });
    expect(await browser.page.textContent('#model-state')).toMatch(/offline|still using tiny-distilbert/);
    await browser.page.fill('#hub-model', '');
    expect(await swapTo('base')).toEqual(base);
    expect(await swapTo(names[0]!)).toEqual(seen[1]);

    // Backend switch: every adapter is materialized again by the WASM kernels; same outputs (within
    // float rounding), base still exact.
    await browser.page.selectOption('#backend', 'wasm');
    await browser.page.waitForFunction(() => {
      const el = document.querySelector<HTMLElement>('#backend-active')!;
      return el.dataset.state === 'done' && el.dataset.backend === 'wasm';
    }, undefined, { timeout: 20_000 });
    expect(await browser.page.textContent('#backend-active')).toBe('active: wasm');
    for (const [i, n] of names.entries()) {
      const logits = await swapTo(n);
      logits.forEach((x, k) => expect(Math.abs(x - seen[i + 1]![k]!), `${n} on wasm`).toBeLessThan(1e-4));
    }
    expect(await swapTo('base')).toEqual(base);

    // WebGPU (SwiftShader under --enable-unsafe-webgpu): offered because navigator.gpu gives an
    // adapter; every adapter materialized again by the WGSL kernels, outputs within 1e-4 of JS, base exact.
    await browser.page.waitForFunction(() => document.querySelector<HTMLElement>('#webgpu-note')!.dataset.webgpu !== '', undefined, { timeout: 10_000 });
    expect(await browser.page.textContent('#webgpu-note')).toBe('');
    expect(await browser.page.getAttribute('#webgpu-note', 'data-webgpu')).toBe('available');
    await browser.page.selectOption('#backend', 'webgpu');
    await browser.page.waitForFunction(() => {
      const el = document.querySelector<HTMLElement>('#backend-active')!;
      return el.dataset.state === 'done' && (el.dataset.backend === 'webgpu' || !document.querySelector<HTMLElement>('#error')!.hidden);
    }, undefined, { timeout: 60_000 });
    expect(await browser.page.isHidden('#error'), (await browser.page.textContent('#error')) ?? '').toBe(true);
    expect(await browser.page.textContent('#backend-active')).toMatch(/^active: webgpu \(.*\)$/);
    for (const [i, n] of names.entries()) {
      const logits = await swapTo(n);
      logits.forEach((x, k) => expect(Math.abs(x - seen[i + 1]![k]!), `${n} on webgpu`).toBeLessThan(1e-4));
    }
    expect(await swapTo('base')).toEqual(base);
    await swapTo(dropped!);

    // Charts: the methods plot (log scale) and the ΔW heatmap of the active adapter.
    expect(await browser.page.locator('#methods-chart svg').count()).toBeGreaterThan(0);
    await browser.page.waitForFunction(() => document.querySelector<HTMLElement>('#dw-chart')!.dataset.module !== '', undefined, { timeout: 10_000 });
    expect(await browser.page.locator('#dw-chart svg').count()).toBeGreaterThan(0);
    await browser.page.selectOption('#compare', 'base');
    await browser.page.waitForFunction(() => document.querySelector<HTMLElement>('#compare-output')!.dataset.adapter === 'base', undefined, { timeout: 10_000 });
    expect(JSON.parse((await browser.page.getAttribute('#compare-output', 'data-logits'))!)).toEqual(base);

    // Structure picture of the TRAC adapter, from its plan: frozen and trainable groups, per-module and shared.
    await swapTo('trac');
    await browser.page.waitForFunction(() => document.querySelector<HTMLElement>('#structure')!.dataset.adapter === 'trac', undefined, { timeout: 10_000 });
    expect(await browser.page.locator('#structure svg').count()).toBe(1);
    expect(await browser.page.locator('#structure svg g.group[data-kind="frozen"]').count()).toBeGreaterThan(0);
    expect(await browser.page.locator('#structure svg g.group[data-kind="trainable"]').count()).toBeGreaterThan(0);
    expect(await browser.page.locator('#structure svg g[data-section="per-module"] g.group').count()).toBeGreaterThan(0);
    await browser.page.screenshot({ path: path.join(artifacts, 'playground.png'), fullPage: true });
    expect(browser.pageErrors).toEqual([]);
  }, 180_000);
});
