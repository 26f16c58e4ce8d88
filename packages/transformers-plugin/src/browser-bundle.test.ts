/**
 * The browser entries as a bundler sees them: core's and the plugin's main entries bundled for the
 * browser with esbuild (what Vite uses) must not import any Node module, and every public error
 * class keeps its `name` (and `code`) after minification, which renames classes.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build, type Metafile } from 'esbuild';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const src = (p: string): string => path.join(ROOT, p);

/** Workspace packages from their sources (the published entries are these files compiled). */
const ALIAS = {
  '@tensorpeft/core': src('packages/core/src/index.ts'),
  '@tensorpeft/kernels-wasm': src('packages/kernels-wasm/src/index.ts'),
  '@tensorpeft/kernels-wgsl': src('packages/kernels-wgsl/src/index.ts'),
};
/** The app brings these (their own browser builds); our code is what is checked. */
const EXTERNAL = ['@huggingface/transformers', 'onnxruntime-web', 'onnxruntime-common'];
const NODE_BUILTINS = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

function nodeImports(meta: Metafile): string[] {
  const found: string[] = [];
  for (const [file, input] of Object.entries(meta.inputs)) {
    for (const imp of input.imports) if (imp.path.startsWith('node:') || NODE_BUILTINS.has(imp.path)) found.push(`${file} → ${imp.path}`);
  }
  for (const out of Object.values(meta.outputs)) for (const imp of out.imports) if (imp.path.startsWith('node:') || NODE_BUILTINS.has(imp.path)) found.push(`output → ${imp.path}`);
  return found;
}

const tmp: string[] = [];
afterAll(async () => {
  for (const d of tmp) await rm(d, { recursive: true, force: true });
});

describe('browser bundle', () => {
  it.each([
    ['@tensorpeft/core', 'packages/core/src/index.ts'],
    ['@tensorpeft/transformers-plugin', 'packages/transformers-plugin/src/index.ts'],
  ])('%s: no node:* (or Node builtin) import reachable from the main entry', async (_name, entry) => {
    const r = await build({
      entryPoints: [src(entry)],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      target: 'es2022',
      write: false,
      metafile: true,
      logLevel: 'silent',
      alias: ALIAS,
      external: EXTERNAL,
    });
    expect(r.errors).toEqual([]);
    expect(nodeImports(r.metafile)).toEqual([]);
    // The entry really was bundled (our sources are in it, not left external).
    const inputs = Object.keys(r.metafile.inputs);
    expect(inputs.some((f) => f.includes('core/src/io/source.ts'))).toBe(true);
  });

  it('the check catches a node: import (a Node-only module bundled for the browser fails it)', async () => {
    const r = await build({
      entryPoints: [src('packages/transformers-plugin/src/node.ts')],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      metafile: true,
      logLevel: 'silent',
      alias: ALIAS,
      external: [...EXTERNAL, 'node:*', 'onnxruntime-node'],
    });
    expect(nodeImports(r.metafile).length).toBeGreaterThan(0);
  });

  it('public errors keep their name and code after a minified production build', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'tpeft-bundle-'));
    tmp.push(dir);
    const entry = path.join(dir, 'entry.ts');
    await writeFile(
      entry,
      [
        `export * from ${JSON.stringify(src('packages/core/src/errors.ts'))};`,
        `export { PluginError } from ${JSON.stringify(src('packages/transformers-plugin/src/errors.ts'))};`,
        `export * from ${JSON.stringify(src('packages/kernels-wasm/src/errors.ts'))};`,
        `export * from ${JSON.stringify(src('packages/kernels-wgsl/src/errors.ts'))};`,
      ].join('\n'),
    );
    const out = path.join(dir, 'bundle.mjs');
    await build({ entryPoints: [entry], bundle: true, minify: true, platform: 'browser', format: 'esm', outfile: out, logLevel: 'silent', alias: ALIAS });
    const mod = (await import(pathToFileURL(out).href)) as Record<string, unknown>;
    const classes = Object.entries(mod).filter(([k, v]) => typeof v === 'function' && /Error$/.test(k)) as Array<[string, new (m: string) => Error & { code: string }]>;
    const expected = [
      'TensorPeftError',
      'AdapterFormatError',
      'ConfigError',
      'ShapeMismatchError',
      'ModelShapeError',
      'NonFiniteError',
      'FetchError',
      'FetchTimeoutError',
      'FetchRedirectError',
      'SizeLimitError',
      'PluginError',
      'WasmLoadError',
      'WasmKernelError',
      'WebGpuUnavailableError',
      'WebGpuDeviceLostError',
      'WebGpuKernelError',
    ];
    expect(classes.map(([k]) => k)).toEqual(expect.arrayContaining(expected));
    // Minification did rename the classes: the literal names are what keeps them.
    expect(classes.filter(([k, C]) => C.name !== k).length).toBeGreaterThan(0);
    const codes = new Set<string>();
    for (const [exportName, C] of classes) {
      const e = new C('boom');
      expect(e.name, exportName).toBe(exportName);
      expect(String(e), exportName).toMatch(new RegExp(`^${exportName}: boom`));
      expect(e.code, exportName).toMatch(/^[A-Z][A-Z0-9_]+$/);
      codes.add(e.code);
    }
    // One code per class.
    expect(codes.size).toBe(classes.length);
  });
});
