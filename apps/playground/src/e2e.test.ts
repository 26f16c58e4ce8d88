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
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { COOP_COEP, needChromium, useBrowserTest, type ServedFile } from '@tensorpeft/browser-harness';
import { adapterFromBytes, adapterStats, listMethods, loadAdapter, materializeAdapter } from '@tensorpeft/core';
import { mergeModel } from '@tensorpeft/transformers-plugin';
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
    // Async: a blocking child process starves the vitest worker's RPC on a loaded machine
    // ("Timeout calling onTaskUpdate" failed a whole run once).
    await promisify(execFile)(process.execPath, [path.join(app, 'scripts/prepare-assets.mjs')], { cwd: app, maxBuffer: 64 << 20 });
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
  timeout: 180_000,
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


/** Wait until the model switch to `id` (`dtype`) is done; fail with the page's error text otherwise. */
async function waitModel(id: string, dtype: string, timeout = 60_000, device = 'wasm'): Promise<void> {
  await browser.page.waitForFunction(
    ([m, d, dev]) => {
      const el = document.querySelector<HTMLElement>('#model-state')!;
      return el.dataset.state === 'error' || (el.dataset.state === 'done' && el.dataset.model === m && el.dataset.dtype === d && el.dataset.device === dev);
    },
    [id, dtype, device] as const,
    { timeout },
  );
  expect(await browser.page.getAttribute('#model-state', 'data-state'), (await browser.page.textContent('#error')) ?? '').toBe('done');
  // The first run on a fresh WebGPU session compiles its shaders (SwiftShader: tens of seconds on a loaded machine).
  await browser.page.waitForFunction(() => document.querySelector<HTMLElement>('#output')!.dataset.state === 'done', undefined, { timeout: Math.max(30_000, timeout) });
}

/** Names in the adapters table, in order. */
async function tableNames(): Promise<string[]> {
  return browser.page.$$eval('#adapters tbody tr', (trs) => trs.map((tr) => (tr as HTMLElement).dataset.adapter!));
}

/**
 * Reference logits computed in Node, independently of the page: transformers.js on onnxruntime-node,
 * the base model as built, and a copy whose fp32 ONNX initializers were merged offline with the
 * adapter (W0 + ΔW, the adapter's classifier heads written in) — no plugin branch involved.
 */
async function nodeReference(modelDir: string, adapterDir: string, text: string): Promise<{ base: number[]; adapter: number[] }> {
  const tf = await import('@huggingface/transformers');
  const adapter = await loadAdapter(adapterDir);
  const tmp = mkdtempSync(path.join(tmpdir(), 'tp-e2e-ref-'));
  try {
    const merged = path.join(tmp, 'merged');
    cpSync(modelDir, merged, { recursive: true });
    rmSync(path.join(merged, 'onnx/model_quantized.onnx'), { force: true });
    writeFileSync(path.join(merged, 'onnx/model.onnx'), mergeModel(readFileSync(path.join(modelDir, 'onnx/model.onnx')), await materializeAdapter(adapter), adapter.extras));
    const saved = { localModelPath: tf.env.localModelPath, allowRemoteModels: tf.env.allowRemoteModels, useCustomCache: tf.env.useCustomCache };
    tf.env.allowRemoteModels = false;
    tf.env.useCustomCache = false;
    try {
      const logits = async (dir: string): Promise<number[]> => {
        tf.env.localModelPath = `${path.dirname(dir)}/`;
        const id = path.basename(dir);
        const tok = await tf.AutoTokenizer.from_pretrained(id);
        const model = await tf.AutoModelForSequenceClassification.from_pretrained(id, { dtype: 'fp32' });
        const out = (await model(tok(text))) as { logits: { data: Float32Array } };
        await model.dispose();
        return Array.from(out.logits.data);
      };
      return { base: await logits(modelDir), adapter: await logits(merged) };
    } finally {
      Object.assign(tf.env, saved);
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

const maxAbs = (a: readonly number[]): number => Math.max(...a.map(Math.abs));

describe('playground in headless Chromium', () => {
  it('loads the model, swaps through every shipped adapter, restores base exactly, reports bad files', async () => {
    needChromium();
    const manifest = JSON.parse(readFileSync(path.join(dist, 'generated/adapters/index.json'), 'utf8')) as { models: { id: string }[]; adapters: { name: string; model: string; real?: boolean }[] };
    expect(manifest.models.map((m) => m.id)).toEqual(['tiny-distilbert', 'distilbert-base-emotion']);
    // The shipped adapters of the first (tiny) model: one per method; the real PEFT one belongs to the base-size model.
    const names = manifest.adapters.filter((a) => a.model === 'tiny-distilbert').map((a) => a.name);
    expect(manifest.adapters.filter((a) => a.real).map((a) => [a.name, a.model])).toEqual([['distilbert-lora-emotion', 'distilbert-base-emotion']]);
    expect(names.length).toBeGreaterThanOrEqual(6);

    await browser.page.goto(`${browser.origin}/`);
    await browser.page.waitForFunction(() => ['ready', 'error'].includes(document.querySelector<HTMLElement>('#status')!.dataset.state!), undefined, { timeout: 60_000 });
    expect(await browser.page.textContent('#status')).toMatch(/^Ready: tiny-distilbert \(fp32, ORT-web wasm, \d+ threads?\); 6 adapters\.$/);
    expect(await browser.page.evaluate(() => globalThis.crossOriginIsolated)).toBe(true);
    // A first visitor: the intro paragraph, and adapters materialized by the WASM kernels by default.
    expect(await browser.page.textContent('#intro')).toMatch(/adapters.*never reloaded/s);
    expect(await browser.page.textContent('#backend-active')).toBe('active: wasm');
    expect(await browser.page.inputValue('#backend')).toBe('wasm');

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

    // Drag and drop: a drop event carrying the two files of the LoRETTA adapter (what a person
    // dropping them from the file manager produces) adds it under a fresh name.
    const dragDir = path.join(dist, `generated/adapters/${names[3]}`);
    await browser.page.evaluate(
      ([c, st]) => {
        const bytes = (b64: string): Uint8Array<ArrayBuffer> => Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes(c!)], 'adapter_config.json', { type: 'application/json' }));
        dt.items.add(new File([bytes(st!)], 'adapter_model.safetensors'));
        const el = document.querySelector('#drop')!;
        el.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true }));
        el.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
      },
      [readFileSync(path.join(dragDir, 'adapter_config.json')).toString('base64'), readFileSync(path.join(dragDir, 'adapter_model.safetensors')).toString('base64')],
    );
    await browser.page.waitForFunction((d) => document.querySelector<HTMLElement>('#output')!.dataset.adapter !== d && document.querySelector<HTMLElement>('#drop')!.dataset.state === 'loaded', dropped, { timeout: 10_000 });
    const dragged = await browser.page.getAttribute('#output', 'data-adapter');
    expect(dragged).toBe(`${names[3]}-2`);
    expect(await swapTo(dragged!)).toEqual(seen[4]);

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
    // The Hub model field. No network here: huggingface.co is routed to local files (the tiny
    // model laid out as on the Hub under test-org/tiny-distilbert-hub, 404 for everything else).
    // An unknown id fails with a shown error and the embedded model stays in use.
    const hubDir = path.join(dist, 'generated/models/tiny-distilbert');
    const hubHits: string[] = [];
    await browser.page.route('https://huggingface.co/**', async (route) => {
      const u = new URL(route.request().url());
      hubHits.push(u.pathname);
      const m = /^\/test-org\/tiny-distilbert-hub\/resolve\/main\/(.+)$/.exec(u.pathname);
      const file = m ? path.join(hubDir, m[1]!) : '';
      const cors = { 'access-control-allow-origin': '*' };
      if (!file.startsWith(hubDir) || !existsSync(file)) return route.fulfill({ status: 404, body: 'Entry not found', headers: cors });
      return route.fulfill({ status: 200, body: readFileSync(file), headers: { ...cors, 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream' } });
    });
    await browser.page.fill('#hub-model', 'Xenova/not-a-model-here');
    await browser.page.click('#load-model');
    await browser.page.waitForFunction(() => document.querySelector<HTMLElement>('#model-state')!.dataset.state === 'error', undefined, { timeout: 30_000 });
    expect(await browser.page.textContent('#model-state')).toBe('failed; still using tiny-distilbert (fp32, wasm)');
    expect(await browser.page.textContent('#error')).toMatch(/^PlaygroundFileError: Hub model Xenova\/not-a-model-here: .*config.json answered HTTP 404/);
    await browser.page.fill('#hub-model', '');
    expect(await swapTo('base')).toEqual(base);
    expect(await swapTo(names[0]!)).toEqual(seen[1]);

    // Backend switch: every adapter is materialized again by the JS reference backend; same outputs
    // as the default WASM kernels (within float rounding), base still exact.
    await browser.page.selectOption('#backend', 'js');
    await browser.page.waitForFunction(() => {
      const el = document.querySelector<HTMLElement>('#backend-active')!;
      return el.dataset.state === 'done' && el.dataset.backend === 'js';
    }, undefined, { timeout: 20_000 });
    expect(await browser.page.textContent('#backend-active')).toBe('active: js');
    for (const [i, n] of names.entries()) {
      const logits = await swapTo(n);
      logits.forEach((x, k) => expect(Math.abs(x - seen[i + 1]![k]!), `${n} on js vs wasm`).toBeLessThan(1e-4));
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
    // Bytes and parameters on separate axes, each labelled with its unit.
    expect(await browser.page.locator('#methods-chart .method-panels > figure').evaluateAll((fs) => fs.map((f) => (f as HTMLElement).dataset.panel))).toEqual(['File size', 'Parameters']);
    const panelText = (name: string): Promise<string | null> => browser.page.locator(`#methods-chart .method-panels > figure[data-panel="${name}"]`).textContent();
    expect(await panelText('File size')).toMatch(/bytes, log scale/);
    expect(await panelText('File size')).not.toMatch(/param/);
    expect(await panelText('Parameters')).toMatch(/parameters \(count, log scale\)/);
    expect(await browser.page.locator('#methods-chart .method-panels > figure svg').count()).toBeGreaterThanOrEqual(2);
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

    // ---- Models: q8 weights, a Hub id, the base-size model with the real PEFT adapter ----
    // Back on the default WASM kernels, which made the first outputs (compared bit for bit below).
    await browser.page.selectOption('#backend', 'wasm');
    await browser.page.waitForFunction(() => document.querySelector<HTMLElement>('#backend-active')!.dataset.backend === 'wasm', undefined, { timeout: 20_000 });
    await swapTo('base');
    const userAdded = (await tableNames()).filter((n) => !names.includes(n));
    expect(userAdded).toEqual([dropped, dragged, byUrl]);

    // q8 weights (onnx/model_quantized.onnx, MatMulInteger): adapters still change the output
    // and base comes back exactly; q8 base is near the fp32 base (dynamic int8 quantization of a
    // 2-layer model: a few % of the logit scale, 0.1 is a loose bound that a wrong file or a
    // broken branch would not meet).
    await browser.page.selectOption('#dtype', 'q8');
    await waitModel('tiny-distilbert', 'q8');
    const baseQ8 = await swapTo('base');
    expect(baseQ8).not.toEqual(base);
    baseQ8.forEach((x, k) => expect(Math.abs(x - base[k]!)).toBeLessThan(0.1 * maxAbs(base)));
    expect(await tableNames()).toEqual([...names, ...userAdded]);
    for (const n of names) expect(await swapTo(n), `${n} on q8`).not.toEqual(baseQ8);
    expect(await swapTo('base')).toEqual(baseQ8);
    // Back to fp32: a fresh session on the same bytes gives the first outputs bit for bit.
    await browser.page.selectOption('#dtype', 'fp32');
    await waitModel('tiny-distilbert', 'fp32');
    expect(JSON.parse((await browser.page.getAttribute('#output', 'data-logits'))!)).toEqual(base);
    expect(await swapTo(names[0]!)).toEqual(seen[1]);

    // A Hub model id (routed as above). Same bytes as the embedded model, so every shipped adapter gives the
    // same logits; the real adapter (768-wide) does not fit and is listed with its typed error.
    await browser.page.fill('#hub-model', 'test-org/tiny-distilbert-hub');
    await browser.page.click('#load-model');
    await waitModel('test-org/tiny-distilbert-hub', 'fp32');
    expect(hubHits).toContain('/test-org/tiny-distilbert-hub/resolve/main/onnx/model.onnx');
    expect(hubHits).toContain('/test-org/tiny-distilbert-hub/resolve/main/tokenizer.json');
    for (const [i, n] of names.entries()) expect(await swapTo(n), `${n} on the Hub model`).toEqual(seen[i + 1]);
    expect(await swapTo('base')).toEqual(base);
    expect(await browser.page.textContent('#skipped')).toMatch(/distilbert-lora-emotion: ShapeMismatchError: /);
    await browser.page.unroute('https://huggingface.co/**');
    await browser.page.fill('#hub-model', '');

    // The base-size DistilBERT with the real HF PEFT LoRA (q_lin/v_lin r = 8 + its
    // pre_classifier/classifier heads). Browser (ORT-web wasm, plugin branch) vs Node (onnxruntime-node,
    // weights merged offline): fp32 on both, different kernels and summation orders over K ≤ 3072
    // through 6 layers; logits are O(1), so 1e-4 leaves ~100× room over fp32 rounding while any
    // wrong module, scale or head shows up far above it.
    const text = await browser.page.inputValue('#text');
    const baseDir = path.join(dist, 'generated/models/distilbert-base-emotion');
    const ref = await nodeReference(baseDir, path.join(dist, 'generated/adapters/distilbert-lora-emotion'), text);
    await browser.page.selectOption('#model', 'distilbert-base-emotion');
    await waitModel('distilbert-base-emotion', 'fp32', 240_000);
    // The 255 MiB model file went through the app's byte-counting stream (the progress bar).
    expect(await browser.page.getAttribute('#model-progress', 'data-file')).toBe('onnx/model.onnx');
    expect(Number(await browser.page.getAttribute('#model-progress', 'data-loaded'))).toBe(statSync(path.join(baseDir, 'onnx/model.onnx')).size);
    expect(await tableNames()).toEqual(['distilbert-lora-emotion']);
    expect(await browser.page.getAttribute('#skipped', 'data-count')).toBe(String(userAdded.length));
    expect(await browser.page.textContent('#adapters tr[data-adapter="distilbert-lora-emotion"]')).toMatch(/LORA.*real PEFT/);
    const bigBase = await swapTo('base');
    bigBase.forEach((x, k) => expect(Math.abs(x - ref.base[k]!), 'base-size base vs Node').toBeLessThan(1e-4));
    const real = await swapTo('distilbert-lora-emotion');
    expect(maxAbs(real.map((x, k) => x - bigBase[k]!))).toBeGreaterThan(1e-3);
    real.forEach((x, k) => expect(Math.abs(x - ref.adapter[k]!), 'real adapter vs Node merged').toBeLessThan(1e-4));
    console.log(JSON.stringify({ real_adapter_vs_node_merged: maxAbs(real.map((x, k) => x - ref.adapter[k]!)), base_vs_node: maxAbs(bigBase.map((x, k) => x - ref.base[k]!)), adapter_effect: maxAbs(real.map((x, k) => x - bigBase[k]!)) }));
    expect(await swapTo('base')).toEqual(bigBase);
    await swapTo('distilbert-lora-emotion');
    // ΔW of a 768×768 module as a raster image; the structure picture of a LoRA: per-module A and B.
    await browser.page.waitForFunction(() => /q_lin/.test(document.querySelector<HTMLElement>('#dw-chart')!.dataset.module ?? ''), undefined, { timeout: 20_000 });
    expect(await browser.page.locator('#dw-chart svg g[aria-label="raster"] image').count()).toBe(1);
    expect(await browser.page.locator('#structure svg g[data-section="per-module"] g.group').count()).toBe(2);
    // …and its modules_to_save heads (pre_classifier, classifier: weight and bias each).
    expect(await browser.page.locator('#structure svg g[data-section="heads"] g.group').count()).toBe(4);
    expect(await browser.page.textContent('#adapters tr[data-adapter="distilbert-lora-emotion"] td:nth-child(9)')).toBe((768 * 768 + 768 + 6 * 768 + 6).toLocaleString('en-US'));
    expect(await browser.page.textContent('#status')).toMatch(/^Ready: distilbert-base-emotion \(fp32, /);
    await browser.page.screenshot({ path: path.join(artifacts, 'playground-base.png'), fullPage: true });
    // The same real adapter on the q8 file (MatMulInteger chain, 66 MiB): it still acts, base comes
    // back exactly, and both stay near the fp32 Node reference: dynamic int8 quantization through 6
    // layers, measured 3.6e-3 (base) and 2.7e-2 (adapter) here, ~1 % of the logit scale; 5 % of it
    // leaves room for another int8 kernel while a wrong branch or a head left out (the adapter moves
    // these logits by ~4.7) would not fit.
    await browser.page.selectOption('#dtype', 'q8');
    await waitModel('distilbert-base-emotion', 'q8', 120_000);
    const bigBaseQ8 = await swapTo('base');
    const realQ8 = await swapTo('distilbert-lora-emotion');
    expect(maxAbs(realQ8.map((x, k) => x - bigBaseQ8[k]!))).toBeGreaterThan(1e-3);
    expect(maxAbs(bigBaseQ8.map((x, k) => x - ref.base[k]!))).toBeLessThan(0.05 * maxAbs(ref.base));
    expect(maxAbs(realQ8.map((x, k) => x - ref.adapter[k]!))).toBeLessThan(0.05 * maxAbs(ref.adapter));
    console.log(JSON.stringify({ q8_base_vs_fp32: maxAbs(bigBaseQ8.map((x, k) => x - ref.base[k]!)), q8_adapter_vs_fp32_merged: maxAbs(realQ8.map((x, k) => x - ref.adapter[k]!)) }));
    expect(await swapTo('base')).toEqual(bigBaseQ8);
    await browser.page.selectOption('#dtype', 'fp32');
    await waitModel('distilbert-base-emotion', 'fp32', 120_000);
    // Back to the tiny model: the user's adapters come back with it.
    await browser.page.selectOption('#model', 'tiny-distilbert');
    await waitModel('tiny-distilbert', 'fp32');
    expect(await tableNames()).toEqual([...names, ...userAdded]);
    expect(await swapTo(dropped!)).toEqual(seen[3]);

    // ---- The model on ORT-web's WebGPU EP (SwiftShader here) ----
    // Another EP: other kernels and summation orders, so within 1e-4 of the wasm outputs (O(1)
    // logits; fp32 differences are ~1e-6), and its own base restored bit for bit.
    const feedOf = (n: string): Promise<string | null> => browser.page.textContent(`#adapters tr[data-adapter="${n}"] td:nth-child(11)`);
    await browser.page.selectOption('#device', 'webgpu');
    await waitModel('tiny-distilbert', 'fp32', 120_000, 'webgpu');
    expect(await browser.page.textContent('#status')).toMatch(/^Ready: tiny-distilbert \(fp32, ORT-web WebGPU\)/);
    const close = (a: number[], b: number[], what: string): void => a.forEach((x, k) => expect(Math.abs(x - b[k]!), what).toBeLessThan(1e-4));
    const gpuBase = await swapTo('base');
    close(gpuBase, base, 'base on webgpu vs wasm');
    const cpuFed: number[][] = [];
    for (const [i, n] of names.entries()) {
      const l = await swapTo(n);
      close(l, seen[i + 1]!, `${n} on webgpu vs wasm`);
      expect(await feedOf(n)).toBe('CPU');
      cpuFed.push(l);
    }
    expect(await swapTo('base')).toEqual(gpuBase);
    // WGSL materialization on ORT's own GPUDevice: adapters are GPU-fed (no CPU copy of A′/B′).
    await browser.page.selectOption('#backend', 'webgpu');
    await browser.page.waitForFunction(() => {
      const el = document.querySelector<HTMLElement>('#backend-active')!;
      return el.dataset.state === 'done' && (el.dataset.backend === 'webgpu' || !document.querySelector<HTMLElement>('#error')!.hidden);
    }, undefined, { timeout: 60_000 });
    for (const [i, n] of names.entries()) {
      const l = await swapTo(n);
      expect(await feedOf(n)).toBe('GPU');
      close(l, cpuFed[i]!, `${n} GPU-fed vs CPU-fed`);
    }
    expect(await swapTo('base')).toEqual(gpuBase);
    await browser.page.screenshot({ path: path.join(artifacts, 'playground-webgpu.png'), fullPage: true });
    // Back to wasm: CPU feeds again (materialized by the same WGSL backend), the first base bit for bit.
    await browser.page.selectOption('#device', 'wasm');
    await waitModel('tiny-distilbert', 'fp32');
    expect(await swapTo('base')).toEqual(base);
    close(await swapTo(names[0]!), seen[1]!, `${names[0]} back on wasm`);
    expect(await feedOf(names[0]!)).toBe('CPU');
    expect(browser.pageErrors).toEqual([]);
  }, 480_000);

  it('Train panel: typed data errors, a seeded TRAC run on wasm joins the list and hot-swaps, downloads; adapters on every new dtype, each base exact', async () => {
    needChromium();
    const page = browser.page;
    const t0 = Date.now();
    const phases: Record<string, number> = {};
    const phase = (name: string): void => {
      phases[name] = (Date.now() - t0) / 1000;
    };
    await page.goto(`${browser.origin}/`);
    // A fresh page (this test does not depend on the one above); ORT's wasm compiles again when
    // this test runs alone (no code cache yet): ~40 s on a loaded machine.
    await page.waitForFunction(() => ['ready', 'error'].includes(document.querySelector<HTMLElement>('#status')!.dataset.state!), undefined, { timeout: 120_000 });
    expect(await page.textContent('#status')).toMatch(/^Ready: tiny-distilbert \(fp32, /);
    phase('loaded');
    const base = JSON.parse((await page.getAttribute('#output', 'data-logits'))!) as number[];
    const shipped = await tableNames();
    // Every method of core's registry is offered, TRAC preselected.
    expect(await page.$$eval('#train-method option', (os) => os.map((o) => (o as HTMLOptionElement).value))).toEqual(listMethods().map((m) => m.peftType));
    expect(await page.inputValue('#train-method')).toBe('TRAC');
    // The bundled set fills the box (288 JSONL rows).
    expect((await page.inputValue('#train-data')).split('\n').length).toBe(288);

    // Bad data: the typed error's message, no adapter added.
    const trainError = async (data: string): Promise<string> => {
      await page.fill('#train-data', data);
      await page.click('#train-start');
      await page.waitForFunction(() => document.querySelector<HTMLElement>('#train-state')!.dataset.state === 'error', undefined, { timeout: 10_000 });
      const msg = (await page.textContent('#train-error')) ?? '';
      await page.evaluate(() => (document.querySelector<HTMLElement>('#train-state')!.dataset.state = ''));
      return msg;
    };
    expect(await trainError('')).toMatch(/^DatasetError: dataset is empty/);
    expect(await trainError('{"text": "i am glad", "label": "joy"}\n{"text": oops}')).toMatch(/^DatasetError: line is not valid JSON.*line 2/);
    expect(await trainError('text,label\ni am glad,joy\ni am bored,boredom')).toMatch(/^DatasetError: label outside the model's label set .*example 2 .*sadness \| joy \| love \| anger \| fear \| surprise.*found "?boredom"?/);
    expect(await tableNames()).toEqual(shipped);
    phase('errors');

    // A seeded run: 24 rows of the bundled set as one full batch per step (the same batch every
    // step, so the loss must fall from the first to the last step), 6 steps on the wasm EP.
    await page.click('#train-bundled');
    await page.evaluate(() => {
      const el = document.querySelector<HTMLTextAreaElement>('#train-data')!;
      el.value = el.value.split('\n').slice(0, 24).join('\n');
    });
    await page.fill('#train-epochs', '6');
    await page.fill('#train-batch', '24');
    await page.fill('#train-lr', '0.02');
    await page.fill('#train-seed', '1');
    await page.selectOption('#train-device', 'wasm');
    await page.click('#train-start');
    await page.waitForFunction(() => ['done', 'error'].includes(document.querySelector<HTMLElement>('#train-state')!.dataset.state!), undefined, { timeout: 60_000 });
    expect(await page.getAttribute('#train-state', 'data-state'), (await page.textContent('#train-error')) ?? '').toBe('done');
    phase('trained');
    const losses = JSON.parse((await page.getAttribute('#train-chart', 'data-losses'))!) as number[];
    console.log(JSON.stringify({ train_losses: losses, state: await page.textContent('#train-state') }));
    expect(losses.length).toBe(6);
    for (const l of losses) expect(Number.isFinite(l)).toBe(true);
    expect(losses[losses.length - 1]!).toBeLessThan(losses[0]!);
    expect(await page.locator('#train-chart svg').count()).toBeGreaterThan(0);
    const trained = (await page.getAttribute('#train-state', 'data-adapter'))!;
    expect(trained).toBe('trained-trac');
    expect(await tableNames()).toEqual([...shipped, trained]);
    expect(await page.textContent(`#adapters tr[data-adapter="${trained}"]`)).toMatch(/TRAC.*trained/);
    // Hot-swapped into the running model: it acts, and base comes back bit for bit.
    const trainedLogits = await swapTo(trained);
    expect(trainedLogits).not.toEqual(base);
    expect(await swapTo('base')).toEqual(base);
    expect(await swapTo(trained)).toEqual(trainedLogits);

    // Downloads: the PEFT folder's two files, which core reads back as a TRAC adapter with the
    // classifier heads as modules_to_save (the same bytes the table reports).
    const files = await page.$$eval('#train-result a[download]', (as) =>
      Promise.all(
        as.map(async (a) => {
          const el = a as HTMLAnchorElement;
          const bytes = new Uint8Array(await (await fetch(el.href)).arrayBuffer());
          let bin = '';
          for (const b of bytes) bin += String.fromCharCode(b);
          return [el.download, btoa(bin)] as const;
        }),
      ),
    );
    expect(files.map(([n]) => n)).toEqual(['adapter_config.json', 'adapter_model.safetensors']);
    const got = Object.fromEntries(files.map(([n, b]) => [n, new Uint8Array(Buffer.from(b, 'base64'))]));
    const back = adapterFromBytes({ config: got['adapter_config.json']!, safetensors: got['adapter_model.safetensors']! });
    expect(back.config.peft_type).toBe('TRAC');
    expect(back.config.modules_to_save).toEqual(['pre_classifier', 'classifier']);
    expect(adapterStats(back).modules).toBe(Number(await page.textContent(`#adapters tr[data-adapter="${trained}"] td:nth-child(4)`)));

    phase('checked');

    // Cancel: a long run stopped after its first steps adds nothing.
    await page.fill('#train-epochs', '200');
    await page.click('#train-start');
    await page.waitForFunction(() => JSON.parse(document.querySelector<HTMLElement>('#train-chart')!.dataset.losses ?? '[]').length >= 1, undefined, { timeout: 30_000 });
    await page.click('#train-cancel');
    await page.waitForFunction(() => document.querySelector<HTMLElement>('#train-state')!.dataset.state === 'cancelled', undefined, { timeout: 30_000 });
    expect(await page.textContent('#train-state')).toMatch(/^cancelled after \d+ steps?; no adapter added$/);
    expect(await tableNames()).toEqual([...shipped, trained]);

    phase('cancelled');
    // The new dtypes of the tiny model (model-gen's fp16, int8, uint8, q4, q4f16, bnb4 files), on
    // wasm: each loads with every adapter (the trained one included), the adapters act, and base
    // comes back bit for bit. Each base is near the fp32 base: fp16 rounding or 4/8-bit weights on
    // a 2-layer model move the O(1) logits by a few % at most; 0.1 of the logit scale is loose
    // enough for every quantizer and still catches a wrong file or a broken branch.
    const extra = ['fp16', 'int8', 'uint8', 'q4', 'q4f16', 'bnb4'];
    expect(await page.$$eval('#dtype option:not([disabled])', (os) => os.map((o) => (o as HTMLOptionElement).value))).toEqual(['fp32', 'q8', ...extra]);
    for (const d of extra) {
      await page.selectOption('#dtype', d);
      await waitModel('tiny-distilbert', d);
      expect(await page.textContent('#skipped')).toBe('');
      expect(await tableNames()).toEqual([...shipped, trained]);
      const b = await swapTo('base');
      expect(b).not.toEqual(base);
      b.forEach((x, k) => expect(Math.abs(x - base[k]!), `${d} base vs fp32`).toBeLessThan(0.1 * maxAbs(base)));
      for (const n of [shipped[0]!, trained]) expect(await swapTo(n), `${n} on ${d}`).not.toEqual(b);
      expect(await swapTo('base'), `${d} disabled = its base`).toEqual(b);
    }
    phase('dtypes');
    await page.selectOption('#dtype', 'fp32');
    await waitModel('tiny-distilbert', 'fp32');
    expect(await swapTo('base')).toEqual(base);
    expect(await swapTo(trained)).toEqual(trainedLogits);

    // On the WebGPU EP, dtypes with fp16 activations need the adapter's shader-f16 feature
    // (read here from navigator.gpu, not from the app): without it they stay listed, disabled,
    // with the reason shown; q4 (MatMulNBits) runs there, adapters act and base is exact.
    const shaderF16 = await page.evaluate(async () => {
      const a = await (navigator as unknown as { gpu: { requestAdapter(): Promise<{ features: Set<string> }> } }).gpu.requestAdapter();
      return a.features.has('shader-f16');
    });
    await page.selectOption('#device', 'webgpu');
    await waitModel('tiny-distilbert', 'fp32', 120_000, 'webgpu');
    const blocked = shaderF16 ? [] : ['fp16', 'q4f16'];
    expect(await page.$$eval('#dtype option[disabled]', (os) => os.map((o) => (o as HTMLOptionElement).value))).toEqual(blocked);
    expect(await page.getAttribute('#dtype-note', 'data-blocked')).toBe(blocked.join(','));
    if (!shaderF16) expect(await page.textContent('#dtype-note')).toMatch(/^Not on ORT-web webgpu: fp16: .*shader-f16.*; q4f16: .*shader-f16/);
    await page.selectOption('#dtype', 'q4');
    await waitModel('tiny-distilbert', 'q4', 120_000, 'webgpu');
    const gpuQ4 = await swapTo('base');
    for (const n of [shipped[0]!, trained]) expect(await swapTo(n), `${n} on q4 webgpu`).not.toEqual(gpuQ4);
    expect(await swapTo('base')).toEqual(gpuQ4);
    phase('webgpu-dtypes');
    await page.screenshot({ path: path.join(artifacts, 'playground-train.png'), fullPage: true });
    phase('end');
    console.log(JSON.stringify({ train_panel_seconds: phases }));
    expect(browser.pageErrors).toEqual([]);
  }, 240_000);
});
