/**
 * The wire-level splice (proto-splice.ts) against the full decode/encode rewrite (rewrite.ts, the
 * reference): on every model model-gen emits (each arch, each dtype file, external data, merged
 * decoders, unfolded / de-duplicated exports) both decode to the same ModelProto with the same
 * branch/param lists; the untouched initializers are views of the source (no copy); and malformed
 * bytes (seeded mutations) end as the full path ends: the same typed error class, or the same model.
 */
import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import onnxProto from 'onnx-proto';
import { ARCHS, EXTRA_DTYPES, makeModel, type MakeModelOptions } from '@tensorpeft/model-gen';
import { rewriteModel } from './rewrite.js';
import { rewriteModel as publicRewrite } from './public-rewrite.js';
import { KEEP_BELOW, decodeLight, rewriteParts, rewriteSpliced } from './proto-splice.js';
import { ModelFormatError } from './errors.js';

const { onnx } = onnxProto;

/** protobufjs' canonical encoding of what `bytes` decode to (field order and packing normalised). */
const canonical = (bytes: Uint8Array): Uint8Array => onnx.ModelProto.encode(onnx.ModelProto.decode(bytes)).finish();

function outcome(f: () => { bytes: Uint8Array; branches: unknown; params: unknown }): { error?: string; model?: Uint8Array; info?: unknown } {
  try {
    const r = f();
    return { model: canonical(r.bytes), info: { branches: r.branches, params: r.params } };
  } catch (e) {
    return { error: `${(e as Error).name}: ${(e as Error).message}` };
  }
}

const VARIANTS: Array<{ label: string; opts: Omit<MakeModelOptions, 'arch'>; archs?: readonly string[] }> = [
  { label: 'all dtypes', opts: { size: 'tiny', quantized: true, dtypes: EXTRA_DTYPES } },
  { label: 'external data', opts: { size: 'tiny', externalData: true } },
  { label: 'no constant folding, fresh init (Transpose + Identity aliases)', opts: { size: 'tiny', constantFolding: false, freshInit: true, quantized: true } },
  { label: 'merged decoder', opts: { size: 'tiny', layout: 'merged-decoder', dtypes: ['q4f16'] }, archs: ['gpt2', 'llama'] },
  { label: 'GPT-2 Conv1D as MatMul', opts: { size: 'tiny', gpt2Conv1d: 'MatMul' }, archs: ['gpt2'] },
];

describe('proto-splice: same ModelProto as the full rewrite on every model model-gen emits', () => {
  for (const v of VARIANTS) {
    for (const arch of v.archs ?? ARCHS) {
      test(`${arch}, ${v.label}`, () => {
        const m = makeModel({ arch, ...v.opts });
        const targets = m.shape.modules.map((x) => x.path);
        const onnxFiles = [...m.files].filter(([k]) => k.endsWith('.onnx'));
        expect(onnxFiles.length).toBeGreaterThan(0);
        for (const [file, bytes] of onnxFiles) {
          const parts = rewriteParts(bytes, { targets });
          expect(parts.spliced, file).toBe(true);
          const ref = rewriteModel(bytes, { targets });
          const got = rewriteSpliced(bytes, { targets });
          expect(got.branches, file).toEqual(ref.branches);
          expect(got.params, file).toEqual(ref.params);
          expect(got.branches.length, file).toBeGreaterThan(0);
          expect(Buffer.from(canonical(got.bytes)).equals(Buffer.from(canonical(ref.bytes))), file).toBe(true);
          // The public bytes entry takes the splice and gives the same.
          expect(Buffer.from(canonical(publicRewrite(bytes, { targets }).bytes)).equals(Buffer.from(canonical(ref.bytes))), file).toBe(true);
          // Every original initializer went through as a view of the source bytes, not a copy.
          const light = decodeLight(bytes)!;
          const views = parts.parts.filter((p) => p.buffer === bytes.buffer);
          expect(views.length, file).toBe(light.records.size);
          const withData = light.model.graph!.initializer!.length;
          expect(withData, file).toBe(light.records.size);
          // …and the light model holds no raw_data of weight size.
          expect(light.model.graph!.initializer!.every((t) => (t.rawData?.length ?? 0) < KEEP_BELOW), file).toBe(true);
        }
      });
    }
  }

  test('merge mode is the full path (it reads base weights)', () => {
    const m = makeModel({ arch: 'distilbert', size: 'tiny', quantized: false });
    const bytes = m.files.get('onnx/model.onnx')!;
    expect(rewriteParts(bytes, { targets: m.shape.modules.map((x) => x.path), mode: 'merge' }).spliced).toBe(false);
  });
});

describe('proto-splice on malformed bytes', () => {
  const m = makeModel({ arch: 'bert', size: 'tiny', quantized: false });
  const bytes = m.files.get('onnx/model.onnx')!;
  const targets = m.shape.modules.map((x) => x.path);

  test('bytes that are no model: the full path\'s ModelFormatError naming the file', () => {
    for (const b of [new Uint8Array([...bytes, 0x0f]), new Uint8Array([...bytes, 0x52, 0x7f]), bytes.subarray(0, bytes.length >> 1), new Uint8Array(0)]) {
      let e: unknown;
      try {
        rewriteSpliced(b, { targets, modelFile: 'onnx/model.onnx' });
      } catch (x) {
        e = x;
      }
      expect(e).toBeInstanceOf(ModelFormatError);
      expect((e as ModelFormatError).code).toBe('MODEL_FORMAT');
      expect((e as Error).message).toContain('onnx/model.onnx');
    }
  });

  test('seeded mutations (byte flips, truncation, inserted bytes): the splice ends as the full path does', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(bytes.length - 1), fc.integer({ min: 0, max: 255 }), fc.constantFrom('set', 'insert', 'cut')), { minLength: 1, maxLength: 4 }),
        (edits) => {
          let b = new Uint8Array(bytes);
          for (const [at, v, kind] of edits) {
            const i = Math.min(at, b.length - 1);
            if (kind === 'set') b[i] = v;
            else if (kind === 'insert') b = new Uint8Array([...b.subarray(0, i), v, ...b.subarray(i)]);
            else b = b.slice(0, Math.max(1, i));
          }
          const full = outcome(() => rewriteModel(b, { targets }));
          const spliced = outcome(() => rewriteSpliced(b, { targets }));
          expect(spliced.error).toBe(full.error);
          expect(spliced.info).toEqual(full.info);
          if (full.model) expect(Buffer.from(spliced.model!).equals(Buffer.from(full.model))).toBe(true);
        },
      ),
      { numRuns: 150, seed: 16 },
    );
  });
});
