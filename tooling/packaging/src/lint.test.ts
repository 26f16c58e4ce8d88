/**
 * The packed tarballs as npm would publish them pass publint (strict: package.json fields, exports
 * that point at shipped files, ESM/CJS format) and arethetypeswrong (types resolve for every
 * exported subpath under node16-ESM and bundler resolution).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { publint } from 'publint';
import { formatMessage } from 'publint/utils';
import { afterAll, describe, expect, it } from 'vitest';
import { packAll, PUBLIC_PACKAGES } from './pack.js';

const dest = mkdtempSync(path.join(tmpdir(), 'tensorpeft-pack-'));
const packed = packAll(dest);
afterAll(() => rmSync(dest, { recursive: true, force: true }));

const attwBin = path.join(path.dirname(createRequire(import.meta.url).resolve('@arethetypeswrong/cli/package.json')), 'dist/index.js');

describe('packed packages', () => {
  it('packs every public package', () => {
    expect(packed.map((p) => p.dir)).toEqual(PUBLIC_PACKAGES);
  });

  for (const p of packed) {
    it(`${p.name}: publint --strict finds nothing`, async () => {
      const buf = readFileSync(p.tarball);
      const { messages, pkg } = await publint({ pack: { tarball: buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer }, strict: true });
      expect(messages.map((m) => `${m.type}: ${formatMessage(m, pkg)}`)).toEqual([]);
    });
  }

  // The CLI has no importable entry (only `bin`): publint covers it.
  for (const p of packed.filter((q) => q.dir !== 'apps/cli')) {
    it(`${p.name}: arethetypeswrong (ESM-only profile) finds nothing`, () => {
      // ESM-only packages: CJS `require` of them is not supported, hence the esm-only profile. The
      // wasm files and the worker script are assets loaded by URL, not modules to import.
      const args = [attwBin, p.tarball, '--profile', 'esm-only', '--format', 'json', '--exclude-entrypoints', './kernels.wasm', './kernels-mt.wasm', './kernels-worker.js'];
      let out: string;
      try {
        out = execFileSync(process.execPath, args, { encoding: 'utf8' });
      } catch (e) {
        out = (e as { stdout?: string }).stdout ?? String(e);
      }
      const result = JSON.parse(out) as { analysis?: { problems?: { resolutionKind?: string }[]; entrypoints?: Record<string, unknown> } };
      // The JSON lists problems of every resolution kind; the esm-only profile ignores CJS `require`
      // (node16-cjs) and pre-exports resolution (node10), which an ESM-only package cannot serve.
      const ignored = new Set(['node10', 'node16-cjs']);
      expect((result.analysis?.problems ?? []).filter((q) => q.resolutionKind === undefined || !ignored.has(q.resolutionKind))).toEqual([]);
      expect(Object.keys(result.analysis?.entrypoints ?? {}).length).toBeGreaterThan(0);
    });
  }

  it('@tensorpeft/kernels-wgsl does not install Dawn (webgpu) for its users: an optional peer only', () => {
    const pkg = JSON.parse(execFileSync('tar', ['-xzOf', packed.find((q) => q.dir === 'packages/kernels-wgsl')!.tarball, 'package/package.json'], { encoding: 'utf8' })) as Record<string, Record<string, unknown> | undefined>;
    expect(pkg.dependencies?.webgpu).toBeUndefined();
    expect(pkg.optionalDependencies?.webgpu).toBeUndefined();
    expect(pkg.peerDependenciesMeta?.webgpu).toEqual({ optional: true });
  });

  it('no published package depends on onnxruntime-node (browser users get only what transformers.js brings)', () => {
    for (const p of packed) {
      const pkg = JSON.parse(execFileSync('tar', ['-xzOf', p.tarball, 'package/package.json'], { encoding: 'utf8' })) as Record<string, Record<string, unknown> | undefined>;
      expect({ name: p.name, dep: pkg.dependencies?.['onnxruntime-node'] ?? pkg.peerDependencies?.['onnxruntime-node'] }).toEqual({ name: p.name, dep: undefined });
    }
  });
});
