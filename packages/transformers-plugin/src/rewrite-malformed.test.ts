/**
 * Malformed model bytes through the rewrite (issue 15): protobuf decode failures, a model without a
 * graph and initializer data shorter than its dims are a typed ModelFormatError naming the file
 * (and the tensor), never protobufjs' plain Error/RangeError or a Float32Array RangeError.
 */
import { describe, expect, test } from 'vitest';
import { makeModel } from '@tensorpeft/model-gen';
import { TensorPeftError } from '@tensorpeft/core';
import onnxProto from 'onnx-proto';
import { ModelFormatError } from './errors.js';
import { decodeModel, findLinears, rewriteModel } from './rewrite.js';
import { rewriteModel as publicRewrite } from './public-rewrite.js';

const { onnx } = onnxProto;

function caught(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  return undefined;
}

describe('rewriteModel on malformed model bytes', () => {
  const m = makeModel({ arch: 'bert', size: 'tiny' });
  const bytes = m.files.get('onnx/model.onnx')!;
  const targets = m.shape.modules.map((x) => x.path);

  test('bytes that do not decode (wire type 7, a length past the end) are a ModelFormatError naming the file', () => {
    // 0x0f: field 1 with wire type 7, which protobuf does not define.
    const badWire = new Uint8Array([...bytes, 0x0f]);
    // 0x52 0x7f: field 10 (unknown to ModelProto, skipped as a length-delimited field) claiming 127 bytes that are not there.
    const pastEnd = new Uint8Array([...bytes, 0x52, 0x7f]);
    for (const b of [badWire, pastEnd]) {
      for (const run of [() => rewriteModel(b, { targets, modelFile: 'onnx/model.onnx' }), () => decodeModel(b, 'onnx/model.onnx')]) {
        const e = caught(run);
        expect(e).toBeInstanceOf(ModelFormatError);
        expect(e).toBeInstanceOf(TensorPeftError);
        expect((e as ModelFormatError).code).toBe('MODEL_FORMAT');
        expect((e as Error).message).toContain('onnx/model.onnx');
      }
    }
    // The public entry (bytes) takes the same path.
    expect(caught(() => publicRewrite(badWire, { targets }))).toBeInstanceOf(ModelFormatError);
  });

  test('a model without a graph is a ModelFormatError', () => {
    const e = caught(() => rewriteModel(new Uint8Array(0), { targets, modelFile: 'empty.onnx' }));
    expect(e).toBeInstanceOf(ModelFormatError);
    expect((e as Error).message).toBe('empty.onnx: the ONNX model has no graph');
  });

  test('merge mode: a weight whose raw data is 3 bytes short of its dims is a ModelFormatError naming the tensor and both sizes', () => {
    const model = decodeModel(bytes);
    const l = findLinears(model).find((x) => x.op === 'MatMul' && x.dtype === 'float32')!;
    const t = model.graph!.initializer!.find((x) => x.name === l.weight)!;
    const full = t.rawData!.length;
    expect(full).toBe(l.n * l.m * 4);
    t.rawData = t.rawData!.slice(0, full - 3);
    const truncated = onnx.ModelProto.encode(model).finish();
    const e = caught(() => rewriteModel(truncated, { targets, mode: 'merge', modelFile: 'm.onnx' }));
    expect(e).toBeInstanceOf(ModelFormatError);
    const msg = (e as Error).message;
    expect(msg).toContain('m.onnx');
    expect(msg).toContain(JSON.stringify(l.weight));
    expect(msg).toContain(`${full} bytes at 4 per element`);
    expect(msg).toContain(`but ${full - 3} bytes`);
  });
});
