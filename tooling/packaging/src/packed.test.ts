/**
 * The public packages as npm users get them, in one run (one `pnpm pack` shared by every check):
 * - the tarballs pass publint (strict: package.json fields, exports that point at shipped files,
 *   ESM/CJS format) and arethetypeswrong (types resolve for every exported subpath under node16-ESM
 *   and bundler resolution), depend on no private package, install no Dawn or onnxruntime-node;
 * - examples/node and examples/browser-vite installed from them with plain `npm install` (the
 *   newest @huggingface/transformers 4.x from the registry) in a copy outside the monorepo, built
 *   with their own tools, the Node app run and the Vite build served on 127.0.0.1 and opened in
 *   headless Chromium. The model and adapters are generated here (no Hub): a tiny DistilBERT at the
 *   apps' local model path, a LoRA adapter at a relative URL, and a TensLoRA adapter on a second
 *   local server standing in for the Hub.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { launchChromium, needChromium, serve, type Browser, type ServedFile } from '@tensorpeft/browser-harness';
import { createAdapter, saveAdapter } from '@tensorpeft/core';
import { writeModel } from '@tensorpeft/model-gen';
import { publint } from 'publint';
import { formatMessage } from 'publint/utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installExample, NPM_ENV, sh, shAll, shRun, tscErrors } from './install.js';
import { packAll, PUBLIC_PACKAGES, type Packed } from './pack.js';

const work = mkdtempSync(path.join(tmpdir(), 'tensorpeft-examples-'));
const nodeApp = path.join(work, 'node');
const webApp = path.join(work, 'browser-vite');
const hubDir = path.join(work, 'hub');
const HUB_REPO = 'tensorpeft/tenslora-demo'; // the id examples/browser-vite loads
let packed: Packed[] = [];
const servers: Server[] = [];
let browser: Browser | undefined;

/** The apps' install, started as soon as the tarballs exist: npm waits on the network while the lint checks run. */
let apps: Promise<void> | undefined;

beforeAll(async () => {
  packed = await packAll(path.join(work, 'tarballs'));
  apps = setUpApps();
  apps.catch(() => {}); // reported by the examples' beforeAll, which awaits it
}, 300_000);

/** Installs both apps and writes what they load; run by the first examples describe. */
async function setUpApps(): Promise<void> {
  await installExample('node', nodeApp, packed);
  await installExample('browser-vite', webApp, packed);
  // What the apps load: the model at their local model path, adapters beside them / on the "Hub".
  const { shape } = await writeModel({ arch: 'distilbert', size: 'tiny', numLabels: 3, seed: 5 }, path.join(nodeApp, 'models/tiny-distilbert'));
  cpSync(path.join(nodeApp, 'models'), path.join(webApp, 'public/models'), { recursive: true });
  const lora = createAdapter({ method: 'LORA', shape, nonzero: true, seed: 1 });
  const tenslora = createAdapter({ method: 'TENSLORA', shape, nonzero: true, seed: 2 });
  await saveAdapter(lora, path.join(nodeApp, 'adapters/lora'));
  await saveAdapter(tenslora, path.join(nodeApp, 'adapters/tenslora'));
  await saveAdapter(lora, path.join(webApp, 'public/adapters/lora'));
  await saveAdapter(tenslora, path.join(hubDir, HUB_REPO, 'resolve/main'));
}

afterAll(async () => {
  await browser?.close();
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  rmSync(work, { recursive: true, force: true }); // two installs: ~1 GB of node_modules
}, 120_000);

function installedVersion(app: string, pkg: string): string {
  return (JSON.parse(readFileSync(path.join(app, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version;
}

/** The newest version of the peer range on the registry (what a fresh `npm install` must get). */
function newestTransformers4(): string {
  const v = JSON.parse(execFileSync('npm', ['view', '@huggingface/transformers@>=4.3.1 <5', 'version', '--json'], { encoding: 'utf8', env: NPM_ENV })) as string | string[];
  return Array.isArray(v) ? v[v.length - 1]! : v;
}

/**
 * transformers.js 4.3.x and the onnxruntime-common it brings have type errors of their own when
 * checked (extensionless imports in @huggingface/tokenizers under NodeNext, two processor
 * overrides, DOM-only names such as ImageData in Node): not ours to fix, so left out here.
 */
const UPSTREAM = /^node_modules\/(@huggingface\/|onnxruntime-common\/)/;

/** Errors of an app's check-libs config (strict, no skipLibCheck) outside UPSTREAM: none allowed. */
async function ownTypeErrors(app: string): Promise<string[]> {
  return (await tscErrors(app, 'tsconfig.check-libs.json')).filter((l) => !UPSTREAM.test(l));
}

const attwBin = path.join(path.dirname(createRequire(import.meta.url).resolve('@arethetypeswrong/cli/package.json')), 'dist/index.js');

describe('packed packages', () => {
  it('packs every public package, and they depend on no private one', () => {
    expect(packed.map((p) => p.dir)).toEqual(PUBLIC_PACKAGES);
    expect(PUBLIC_PACKAGES).toEqual(expect.arrayContaining(['packages/core', 'packages/transformers-plugin', 'apps/cli']));
    expect(PUBLIC_PACKAGES).not.toContain('apps/playground'); // private: a demo app, not published
    const names = new Set(packed.map((p) => p.name));
    for (const p of packed) {
      const pkg = JSON.parse(execFileSync('tar', ['-xzOf', p.tarball, 'package/package.json'], { encoding: 'utf8' })) as { dependencies?: Record<string, string>; peerDependencies?: Record<string, string> };
      for (const dep of Object.keys({ ...pkg.dependencies, ...pkg.peerDependencies }).filter((d) => d.startsWith('@tensorpeft/'))) {
        expect({ from: p.name, dep, published: names.has(dep) }).toEqual({ from: p.name, dep, published: true });
      }
    }
  });

  it('publint --strict finds nothing in any tarball', async () => {
    for (const p of packed) {
      const buf = readFileSync(p.tarball);
      const { messages, pkg } = await publint({ pack: { tarball: buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer }, strict: true });
      expect({ name: p.name, messages: messages.map((m) => `${m.type}: ${formatMessage(m, pkg)}`) }).toEqual({ name: p.name, messages: [] });
    }
  });

  it('arethetypeswrong (ESM-only profile) finds nothing in any library tarball', { timeout: 120_000 }, async () => {
    // The CLI has no importable entry (only `bin`): publint covers it.
    for (const p of packed.filter((q) => q.dir !== 'apps/cli')) {
      // ESM-only packages: CJS `require` of them is not supported, hence the esm-only profile. The
      // wasm files and the worker script are assets loaded by URL, not modules to import.
      const args = [attwBin, p.tarball, '--profile', 'esm-only', '--format', 'json', '--exclude-entrypoints', './kernels.wasm', './kernels-mt.wasm', './kernels-worker.js'];
      const out = (await shRun(process.execPath, args, path.dirname(p.tarball))).stdout;
      const result = JSON.parse(out) as { analysis?: { problems?: { resolutionKind?: string }[]; entrypoints?: Record<string, unknown> } };
      // The JSON lists problems of every resolution kind; the esm-only profile ignores CJS `require`
      // (node16-cjs) and pre-exports resolution (node10), which an ESM-only package cannot serve.
      const ignored = new Set(['node10', 'node16-cjs']);
      const problems = (result.analysis?.problems ?? []).filter((q) => q.resolutionKind === undefined || !ignored.has(q.resolutionKind));
      expect({ name: p.name, problems }).toEqual({ name: p.name, problems: [] });
      expect(Object.keys(result.analysis?.entrypoints ?? {}).length).toBeGreaterThan(0);
    }
  });

  it('@tensorpeft/kernels-wgsl does not install Dawn (webgpu) for its users: an optional peer only', () => {
    const pkg = JSON.parse(execFileSync('tar', ['-xzOf', packed.find((q) => q.dir === 'packages/kernels-wgsl')!.tarball, 'package/package.json'], { encoding: 'utf8' })) as Record<string, Record<string, unknown> | undefined>;
    expect(pkg.dependencies?.webgpu).toBeUndefined();
    expect(pkg.optionalDependencies?.webgpu).toBeUndefined();
    expect(pkg.peerDependenciesMeta?.webgpu).toEqual({ optional: true });
  });

  it('no library package depends on onnxruntime-node (browser users get only what transformers.js brings)', () => {
    // The CLI is a Node command (it trains and verifies on onnxruntime-node): it may.
    for (const p of packed.filter((q) => q.dir !== 'apps/cli')) {
      const pkg = JSON.parse(execFileSync('tar', ['-xzOf', p.tarball, 'package/package.json'], { encoding: 'utf8' })) as Record<string, Record<string, unknown> | undefined>;
      expect({ name: p.name, dep: pkg.dependencies?.['onnxruntime-node'] ?? pkg.peerDependencies?.['onnxruntime-node'] }).toEqual({ name: p.name, dep: undefined });
    }
  });
});

describe('examples/node, installed from the packed tarballs with npm', () => {
  beforeAll(() => apps, 900_000);

  it('gets the @tensorpeft packages from the tarballs and the newest @huggingface/transformers 4.x, no Dawn', () => {
    for (const p of packed.filter((q) => ['@tensorpeft/core', '@tensorpeft/transformers-plugin', '@tensorpeft/kernels-wasm'].includes(q.name))) {
      const dir = path.join(nodeApp, 'node_modules', p.name);
      expect(lstatSync(dir).isSymbolicLink()).toBe(false); // unpacked, not a workspace link
      expect(installedVersion(nodeApp, p.name)).toBe(p.version);
    }
    expect(installedVersion(nodeApp, '@huggingface/transformers')).toBe(newestTransformers4());
    expect(existsSync(path.join(nodeApp, 'node_modules/webgpu'))).toBe(false);
  });

  it('builds (strict tsc) and runs: adapters change the output, swap, per-call override, disable = base, a pipeline with a per-call adapter', { timeout: 180_000 }, async () => {
    await sh('npm', ['run', 'build'], nodeApp);
    const out = (await sh('npm', ['start', '--silent', '--', 'tiny-distilbert', './adapters/lora', './adapters/tenslora'], nodeApp)).trim().split('\n');
    const r = JSON.parse(out[out.length - 1]!) as Record<'base' | 'first' | 'second' | 'perCall' | 'disabled', number[]> & {
      adapters: string[];
      pipeFirst: { label: string; score: number }[];
      pipeBase: { label: string; score: number }[];
    };
    expect(r.base).toHaveLength(2 * 3); // two texts, three labels
    expect(r.adapters).toEqual(['first', 'second']);
    expect(r.first).not.toEqual(r.base);
    expect(r.second).not.toEqual(r.base);
    expect(r.second).not.toEqual(r.first);
    expect(r.perCall).toEqual(r.first); // the same feeds, the same session: bit for bit
    expect(r.disabled).toEqual(r.base);
    // The pipeline's scores are softmaxes of the first text's logits (row 0 of the model's outputs).
    const softmax = (l: number[]): number[] => {
      const e = l.map((x) => Math.exp(x - Math.max(...l)));
      const sum = e.reduce((s, y) => s + y, 0);
      return e.map((y) => y / sum);
    };
    const scores = (out: { label: string; score: number }[]): number[] => [...out].sort((a, b) => a.label.localeCompare(b.label)).map((o) => o.score);
    // Labels LABEL_0…LABEL_2 sort in logit order. 1e-5: the model ran the text padded in a batch of
    // two, the pipeline alone (masked positions change the summation order, not the result).
    scores(r.pipeFirst).forEach((p, i) => expect(Math.abs(p - softmax(r.first.slice(0, 3))[i]!)).toBeLessThan(1e-5));
    scores(r.pipeBase).forEach((p, i) => expect(Math.abs(p - softmax(r.base.slice(0, 3))[i]!)).toBeLessThan(1e-5));
  });

  it('type-checks every library .d.ts strictly (skipLibCheck: false): no error outside transformers.js itself', { timeout: 180_000 }, async () => {
    expect(await ownTypeErrors(nodeApp)).toEqual([]);
  });

  it('`npx tensorpeft` runs the packed CLI: --version, and a relative path from the app folder', async () => {
    const cli = packed.find((p) => p.name === '@tensorpeft/cli')!;
    expect((await sh('npx', ['--no-install', 'tensorpeft', '--version'], nodeApp)).trim()).toBe(cli.version);
    const info = JSON.parse(await sh('npx', ['--no-install', 'tensorpeft', 'inspect', './adapters/tenslora', '--json'], nodeApp)) as { peft_type: string; modules: number };
    expect(info.peft_type).toBe('TENSLORA');
    expect(info.modules).toBeGreaterThan(0);
  });
});

describe('examples/browser-vite, installed from the packed tarballs with npm', () => {
  let buildLog = '';

  it('builds with Vite without externalizing any node: built-in', { timeout: 300_000 }, async () => {
    // `npm run build` is these two steps with a tsc in between; the next test type-checks strictly.
    await sh('npm', ['run', 'ort-files'], webApp);
    buildLog = await shAll(process.execPath, [path.join(webApp, 'node_modules/vite/bin/vite.js'), 'build'], webApp);
    expect(existsSync(path.join(webApp, 'dist/index.html'))).toBe(true);
    expect(buildLog).not.toMatch(/externalized for browser compatibility/);
  });

  it('type-checks every library .d.ts strictly (skipLibCheck: false): no error outside transformers.js itself', { timeout: 180_000 }, async () => {
    expect(await ownTypeErrors(webApp)).toEqual([]);
  });

  it("a bundle that imports one function of core keeps core's method registration (its sideEffects list)", async () => {
    // core registers its methods in a side-effect import (index → methods/all); a sideEffects list
    // that leaves either file out lets Rollup drop every method: "unknown peft_type" in the browser.
    const probe = path.join(webApp, 'probe-methods');
    mkdirSync(probe); // inside the app: '@tensorpeft/core' resolves from its node_modules
    writeFileSync(path.join(probe, 'main.js'), "import { listMethods } from '@tensorpeft/core';\nexport const methods = listMethods().map((m) => m.peftType);\n");
    writeFileSync(path.join(probe, 'vite.config.mjs'), "export default { logLevel: 'warn', build: { outDir: 'out', lib: { entry: 'main.js', formats: ['es'], fileName: 'probe' } } };\n");
    await sh(process.execPath, [path.join(webApp, 'node_modules/vite/bin/vite.js'), 'build'], probe);
    const out = await sh(process.execPath, ['--input-type=module', '-e', "const { methods } = await import('./out/probe.js'); console.log(JSON.stringify(methods));"], probe);
    expect((JSON.parse(out) as string[]).sort()).toEqual(['LORA', 'LORETTA', 'LORTA', 'TENSLORA', 'TRAC', 'VERA']);
  });

  it('WebGPU in Node without the `webgpu` package: a typed error saying how to install it', async () => {
    const probe = path.join(webApp, 'probe-webgpu.mjs');
    writeFileSync(probe, "import { WebGpuBackend } from '@tensorpeft/kernels-wgsl';\ntry { await WebGpuBackend.create(); console.log('{}'); } catch (e) { console.log(JSON.stringify({ name: e.name, message: e.message })); }\n");
    const r = JSON.parse((await sh(process.execPath, [probe], webApp)).trim()) as { name?: string; message?: string };
    expect(r.name).toBe('WebGpuUnavailableError');
    expect(r.message).toContain('npm install webgpu');
  });

  it('runs in headless Chromium: local model path, relative-URL and Hub-id adapters, swap, per-call override, disable, typed errors keep their names', { timeout: 180_000 }, async () => {
    needChromium();
    const dist = path.join(webApp, 'dist');
    const site = await serve((p) => fileAt(dist, p === '/' ? '/index.html' : p));
    const hub = await serve((p) => fileAt(hubDir, p), { 'access-control-allow-origin': '*' });
    servers.push(site.server, hub.server);
    browser = await launchChromium({ profilePrefix: 'tensorpeft-example-' });
    const log: string[] = [];
    browser.page.on('console', (m) => log.push(`${m.type()}: ${m.text()}`));
    await browser.page.goto(`${site.origin}/?hub=${encodeURIComponent(`${hub.origin}/`)}`);
    await browser.page.waitForFunction(() => '__result' in window, undefined, { timeout: 120_000 });
    const r = (await browser.page.evaluate(() => (window as unknown as { __result: unknown }).__result)) as {
      error?: { name: string; message: string };
      base: number[];
      local: number[];
      hub: number[];
      perCall: number[];
      afterPerCall: number[];
      disabled: number[];
      adapters: string[];
      missing?: { name: string; message: string };
      errors: { checked: string[]; wrong: { error: string; name: string }[] };
    };
    expect({ error: r.error, pageErrors: browser.pageErrors }, log.join('\n')).toEqual({ error: undefined, pageErrors: [] });
    expect(r.base).toHaveLength(2 * 3);
    expect(r.adapters).toEqual(['local', 'hub']);
    expect(r.local).not.toEqual(r.base);
    expect(r.hub).not.toEqual(r.base);
    expect(r.hub).not.toEqual(r.local);
    expect(r.perCall).toEqual(r.local); // a per-call override runs the other adapter…
    expect(r.afterPerCall).toEqual(r.hub); // …and leaves the active one as it was
    expect(r.disabled).toEqual(r.base);
    expect(r.missing?.name).toBe('FetchError');
    // Every TensorPeftError class of the four packages, by its exported name, after minification.
    expect(r.errors.wrong).toEqual([]);
    expect(r.errors.checked).toEqual(expect.arrayContaining(['core.TensorPeftError', 'core.FetchError', 'core.ShapeMismatchError', 'transformers-plugin.PluginError', 'kernels-wgsl.WebGpuUnavailableError']));
  });
});

const MIME: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.json': 'application/json', '.wasm': 'application/wasm', '.css': 'text/css' };

/** A file under `root` for a URL path (never outside it), or undefined (404). */
function fileAt(root: string, pathname: string): ServedFile | undefined {
  const file = path.join(root, decodeURIComponent(pathname));
  if (!file.startsWith(root + path.sep) || !existsSync(file) || statSync(file).isDirectory()) return undefined;
  return [MIME[path.extname(file)] ?? 'application/octet-stream', readFileSync(file)];
}
