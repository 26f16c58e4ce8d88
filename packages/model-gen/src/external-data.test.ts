import { describe, expect, it } from 'vitest';
import { buildGraph, decodeModel, encodeModelExternal, makeModel, modelDims } from './index.js';

type Onnx = ReturnType<typeof decodeModel>;
type Tensor = NonNullable<NonNullable<Onnx['graph']>['initializer']>[number];
const EXTERNAL = 1; // TensorProto.DataLocation.EXTERNAL

function refOf(t: Tensor): Record<string, string> {
  return Object.fromEntries((t.externalData ?? []).map((e) => [e.key!, e.value!]));
}

/** Every initializer's bytes, read back through its external_data reference when it has one. */
function resolvedBytes(m: Onnx, files: Map<string, Uint8Array>): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  for (const t of m.graph!.initializer!) {
    if (t.dataLocation !== EXTERNAL) {
      out.set(t.name!, t.rawData!);
      continue;
    }
    const r = refOf(t);
    const file = files.get(r['location']!)!;
    out.set(t.name!, file.subarray(Number(r['offset']), Number(r['offset']) + Number(r['length'])));
  }
  return out;
}

describe('external data', () => {
  it('moves initializers of ≥ 1 KiB to onnx/<file>_data; the references decode back to the same weights', () => {
    const inline = makeModel({ arch: 'bert', seed: 4, numLabels: 3 });
    const ext = makeModel({ arch: 'bert', seed: 4, numLabels: 3, externalData: true });
    expect([...ext.files.keys()]).toEqual(expect.arrayContaining(['onnx/model.onnx', 'onnx/model.onnx_data', 'onnx/model_quantized.onnx', 'onnx/model_quantized.onnx_data']));
    expect(inline.files.has('onnx/model.onnx_data')).toBe(false);
    const cfg = JSON.parse(new TextDecoder().decode(ext.files.get('config.json'))) as Record<string, unknown>;
    expect(cfg['transformers.js_config']).toEqual({ use_external_data_format: true });

    for (const name of ['model.onnx', 'model_quantized.onnx']) {
      const a = decodeModel(inline.files.get(`onnx/${name}`)!);
      const b = decodeModel(ext.files.get(`onnx/${name}`)!);
      const data = ext.files.get(`onnx/${name}_data`)!;
      let moved = 0;
      let end = 0;
      for (const t of b.graph!.initializer!) {
        if (t.dataLocation !== EXTERNAL) {
          expect(t.rawData!.length, t.name!).toBeLessThan(1024);
          continue;
        }
        moved++;
        expect(t.rawData?.length ?? 0, `${t.name}: no inline bytes`).toBe(0);
        const r = refOf(t);
        expect(Object.keys(r).sort()).toEqual(['length', 'location', 'offset']);
        expect(r['location']).toBe(`${name}_data`);
        expect(r['offset']).toMatch(/^\d+$/);
        expect(Number(r['length'])).toBeGreaterThanOrEqual(1024);
        // Tiny tensors are far below the alignment threshold: packed back to back in initializer order.
        expect(Number(r['offset'])).toBe(end);
        end += Number(r['length']);
      }
      expect(moved).toBeGreaterThan(5);
      expect(data.length).toBe(end);
      // Same names, dims and types; bytes equal to the inline encoding (same seed, same weights).
      const ra = resolvedBytes(a, new Map());
      const rb = resolvedBytes(b, new Map([[`${name}_data`, data]]));
      expect([...rb.keys()]).toEqual([...ra.keys()]);
      for (const [k, v] of ra) expect(Buffer.from(rb.get(k)!).equals(Buffer.from(v)), k).toBe(true);
      expect(b.graph!.initializer!.map((t) => [t.name, t.dataType, (t.dims ?? []).map(Number)])).toEqual(a.graph!.initializer!.map((t) => [t.name, t.dataType, (t.dims ?? []).map(Number)]));
      expect(ext.files.get(`onnx/${name}`)!.length + data.length).toBeGreaterThan(inline.files.get(`onnx/${name}`)!.length);
    }
    // The weights reported by makeModel are unaffected.
    const w = 'bert.encoder.layer.0.attention.self.query.weight';
    expect(Array.from(ext.weights.get(w)!.data as Float32Array)).toEqual(Array.from(inline.weights.get(w)!.data as Float32Array));
  });

  it('aligns tensors above the alignment threshold, zero-pads, and keeps small ones inline', () => {
    const { graph } = buildGraph('bert', 'sequence-classification', modelDims('bert', 'tiny'), 2, 1);
    const e = encodeModelExternal(graph, { location: 'w.bin', sizeThreshold: 256, alignThreshold: 2048, alignment: 4096 });
    const m = decodeModel(e.model);
    expect(e.entries.length).toBeGreaterThan(0);
    let prevEnd = 0;
    let aligned = 0;
    for (const x of e.entries) {
      expect(x.offset).toBeGreaterThanOrEqual(prevEnd);
      if (x.length > 2048) {
        expect(x.offset % 4096, x.name).toBe(0);
        aligned++;
      } else {
        expect(x.offset, x.name).toBe(prevEnd);
      }
      expect(e.data.subarray(prevEnd, x.offset).every((b) => b === 0)).toBe(true);
      prevEnd = x.offset + x.length;
    }
    expect(aligned).toBeGreaterThan(0);
    const src = new Map([...graph.initializers].map(([k, t]) => [k, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength)]));
    for (const [k, v] of resolvedBytes(m, new Map([['w.bin', e.data]]))) expect(Buffer.from(v).equals(Buffer.from(src.get(k)!)), k).toBe(true);
    const small = m.graph!.initializer!.filter((t) => t.dataLocation !== EXTERNAL);
    expect(small.length).toBeGreaterThan(0);
    for (const t of small) expect(t.rawData!.length).toBeLessThan(256);
  });

  it('refuses a location that is not a plain file name', () => {
    const { graph } = buildGraph('distilbert', 'feature-extraction', modelDims('distilbert', 'tiny'), 2, 0);
    for (const location of ['', '../x', 'a/b', '/abs', 'c:\\x', '..']) expect(() => encodeModelExternal(graph, { location }), location).toThrow(/plain file name/);
  });
});
