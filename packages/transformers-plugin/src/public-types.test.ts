/**
 * The public declarations never reach onnx-proto: its .d.ts name protobufjs' global `Long`, which
 * apps that check libraries (`skipLibCheck: false`) and list their own `types` do not have. The
 * plugin's declarations are emitted in memory and followed from index.d.ts through every relative
 * import; the packages they import must not include onnx-proto.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { expect, test } from 'vitest';

const SRC = fileURLToPath(new URL('.', import.meta.url));

test('declarations reachable from the main entry import no onnx-proto (rewrite.d.ts, which does, is not reachable)', () => {
  const configPath = path.join(SRC, '..', 'tsconfig.json');
  const parsed = ts.parseJsonConfigFileContent(ts.readConfigFile(configPath, (p) => ts.sys.readFile(p)).config, ts.sys, path.dirname(configPath));
  const out = new Map<string, string>();
  const program = ts.createProgram([path.join(SRC, 'index.ts')], { ...parsed.options, declaration: true, emitDeclarationOnly: true, noEmit: false, declarationMap: false, outDir: '/virtual' });
  program.emit(undefined, (file, text) => {
    if (file.endsWith('.d.ts')) out.set(path.basename(file), text);
  });
  const imports = (name: string): string[] => [...(out.get(name) ?? '').matchAll(/from '([^']+)'|import\("([^"]+)"\)|reference types="([^"]+)"/g)].map((m) => m[1] ?? m[2] ?? m[3]!);
  const seen = new Set<string>();
  const packages = new Set<string>();
  const queue = ['index.d.ts'];
  while (queue.length) {
    const f = queue.pop()!;
    if (seen.has(f)) continue;
    seen.add(f);
    expect(out.has(f), `${f} was emitted`).toBe(true);
    for (const spec of imports(f)) {
      if (spec.startsWith('./')) queue.push(spec.slice(2).replace(/\.js$/, '.d.ts'));
      else packages.add(spec);
    }
  }
  expect(seen.has('public-rewrite.d.ts')).toBe(true);
  expect(seen.has('rewrite.d.ts')).toBe(false);
  expect([...packages].filter((p) => p.startsWith('onnx-proto') || p.startsWith('protobufjs'))).toEqual([]);
  // The check sees such an import where there is one.
  expect(imports('rewrite.d.ts')).toContain('onnx-proto');
});
