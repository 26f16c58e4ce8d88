import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { AdapterFormatError, NonFiniteError } from '../errors.js';
import type { Tensor } from '../tensor.js';
import { MAX_HEADER_BYTES, findDuplicateJsonKey, parseSafetensors, readSafetensorsHeader, writeSafetensors } from './safetensors.js';

const REAL = ['distilbert-lora-emotion', 'gpt2-lora-tigrinya'] as const;
const realPath = (d: string): string => fileURLToPath(new URL(`../../../../fixtures/peft-real/${d}/adapter_model.safetensors`, import.meta.url));
const readReal = (d: string): Uint8Array => new Uint8Array(readFileSync(realPath(d)));

/** A safetensors file from a raw header string and a data section. */
function raw(header: string, data: Uint8Array | number = 0): Uint8Array {
  const h = new TextEncoder().encode(header);
  const d = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + h.length + d.length);
  new DataView(out.buffer).setUint32(0, h.length, true);
  out.set(h, 8);
  out.set(d, 8 + h.length);
  return out;
}
const json = (header: object, data: Uint8Array | number = 0): Uint8Array => raw(JSON.stringify(header), data);
const f32bytes = (...xs: number[]): Uint8Array => new Uint8Array(new Float32Array(xs).buffer);

/** Run `fn`, expect an error of class `cls` whose message contains every `parts`. */
function expectError(fn: () => unknown, cls: new (...a: any[]) => Error, ...parts: string[]): Error {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err, 'expected an error').toBeInstanceOf(cls);
  for (const p of parts) expect((err as Error).message).toContain(p);
  return err as Error;
}

describe('safetensors writer', () => {
  const tensors = new Map<string, Tensor>([
    ['b', { shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) }],
    ['a', { shape: [3], data: new Float32Array([0.5, -1, 65504]) }],
    ['empty', { shape: [0, 4], data: new Float32Array(0) }],
    ['é', { shape: [], data: new Float32Array([7]) }],
  ]);

  it('writes the reference layout: sorted keys, metadata first, header padded to 8 with spaces', () => {
    const bytes = writeSafetensors(tensors, { metadata: { format: 'pt', a: 'x' } });
    const n = new DataView(bytes.buffer).getUint32(0, true);
    expect(n % 8).toBe(0);
    expect(new DataView(bytes.buffer).getUint32(4, true)).toBe(0);
    const text = new TextDecoder().decode(bytes.subarray(8, 8 + n));
    expect(text.trimEnd()).toBe(
      '{"__metadata__":{"a":"x","format":"pt"},"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},' +
        '"b":{"dtype":"F32","shape":[2,2],"data_offsets":[12,28]},"empty":{"dtype":"F32","shape":[0,4],"data_offsets":[28,28]},' +
        '"é":{"dtype":"F32","shape":[],"data_offsets":[28,32]}}',
    );
    expect(/^ *$/.test(text.slice(text.trimEnd().length))).toBe(true);
    expect(bytes.length).toBe(8 + n + 32);
  });

  it('round-trips fp32 exactly and fp16/bf16 to the nearest value', () => {
    for (const dtype of ['fp32', 'fp16', 'bf16'] as const) {
      const p = parseSafetensors(writeSafetensors(tensors, { dtype, metadata: { format: 'pt' } }));
      expect(p.metadata).toEqual({ format: 'pt' });
      expect([...p.tensors.keys()].sort()).toEqual(['a', 'b', 'empty', 'é']);
      expect(p.tensors.get('a')!.dtype).toBe({ fp32: 'F32', fp16: 'F16', bf16: 'BF16' }[dtype]);
      expect(p.tensors.get('b')!.shape).toEqual([2, 2]);
      expect([...p.tensors.get('b')!.data]).toEqual([1, 2, 3, 4]);
      expect([...p.tensors.get('a')!.data]).toEqual(dtype === 'bf16' ? [0.5, -1, 65536] : [0.5, -1, 65504]);
      expect(p.tensors.get('empty')!.data.length).toBe(0);
    }
  });

  it('refuses NaN/Inf and fp16 overflow unless allowed', () => {
    const bad = new Map([['w', { shape: [3], data: new Float32Array([0, 1, NaN]) }]]);
    expectError(() => writeSafetensors(bad), NonFiniteError, 'tensor w', 'index 2', 'NaN');
    expect(() => writeSafetensors(bad, { allowNonFinite: true })).not.toThrow();
    const big = new Map([['w', { shape: [2], data: new Float32Array([1, 70000]) }]]);
    expectError(() => writeSafetensors(big, { dtype: 'fp16' }), NonFiniteError, 'overflows F16', 'tensor w', 'index 1', '70000');
    expect(() => writeSafetensors(big, { dtype: 'bf16' })).not.toThrow();
    const wrong = new Map([['w', { shape: [2, 2], data: new Float32Array(3) }]]);
    expectError(() => writeSafetensors(wrong), AdapterFormatError, 'tensor w', 'expected 4', 'found 3');
  });

  for (const d of REAL) {
    it(`re-writes the real PEFT file ${d} byte for byte`, () => {
      const orig = readReal(d);
      const p = parseSafetensors(orig, d);
      expect(p.metadata).toEqual({ format: 'pt' });
      for (const t of p.tensors.values()) expect(t.dtype).toBe('F32');
      const again = writeSafetensors(p.tensors, { dtype: 'fp32', metadata: p.metadata });
      // The PEFT files were written by the Python/Rust safetensors library, whose layout (sorted
      // keys, __metadata__ first, compact JSON, space padding) our writer reproduces exactly.
      expect(again.length).toBe(orig.length);
      expect(Buffer.compare(Buffer.from(again), Buffer.from(orig))).toBe(0);
      const re = parseSafetensors(again);
      for (const [k, t] of p.tensors) {
        expect(re.tensors.get(k)!.shape).toEqual(t.shape);
        expect(Buffer.compare(Buffer.from(re.tensors.get(k)!.data.buffer), Buffer.from(t.data.buffer))).toBe(0);
      }
    });
  }
});

describe('safetensors reader rejects malformed files', () => {
  const F = 'bad.safetensors';
  const one = { dtype: 'F32', shape: [2], data_offsets: [0, 8] };

  it('accepts a minimal valid file', () => {
    const p = parseSafetensors(json({ w: one }, f32bytes(1, 2)), F);
    expect([...p.tensors.get('w')!.data]).toEqual([1, 2]);
  });

  it('file shorter than 8 bytes', () => {
    expectError(() => parseSafetensors(new Uint8Array(5), F), AdapterFormatError, F, 'expected ≥ 8 bytes', 'found 5 bytes');
  });

  it('huge declared header length fails before any allocation', () => {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, 2n ** 53n, true);
    // An attempted 2^53-byte allocation would throw a RangeError, not this typed error.
    const e = expectError(() => parseSafetensors(b, F), AdapterFormatError, F, 'header length', `≤ ${MAX_HEADER_BYTES}`, String(2 ** 53));
    expect(e.message).toContain('larger than the cap');
    new DataView(b.buffer).setBigUint64(0, 0xffffffffffffffffn, true);
    expectError(() => parseSafetensors(b, F), AdapterFormatError, F, 'header length');
  });

  it('header length past the end of the file', () => {
    const b = json({ w: one }, f32bytes(1, 2));
    new DataView(b.buffer).setUint32(0, 1000, true);
    expectError(() => parseSafetensors(b, F), AdapterFormatError, F, 'past the end of the file', 'found 1000');
  });

  it('header that is not UTF-8, not JSON, or not an object', () => {
    const b = raw('{"w":1}');
    b[9] = 0xff;
    expectError(() => parseSafetensors(b, F), AdapterFormatError, F, 'UTF-8');
    expectError(() => parseSafetensors(raw('{"w": '), F), AdapterFormatError, F, 'not valid JSON');
    expectError(() => parseSafetensors(raw('[1,2]'), F), AdapterFormatError, F, 'expected a JSON object');
    expectError(() => parseSafetensors(raw('{} x'), F), AdapterFormatError, F, 'not valid JSON');
  });

  it('entries missing fields or with wrong types', () => {
    expectError(() => parseSafetensors(json({ w: { shape: [2], data_offsets: [0, 8] } }, 8), F), AdapterFormatError, F, 'tensor w', 'missing dtype');
    expectError(() => parseSafetensors(json({ w: { dtype: 'F32', data_offsets: [0, 8] } }, 8), F), AdapterFormatError, 'tensor w', 'missing shape');
    expectError(() => parseSafetensors(json({ w: { dtype: 'F32', shape: [2] } }, 8), F), AdapterFormatError, 'tensor w', 'missing data_offsets');
    expectError(() => parseSafetensors(json({ w: 5 }, 8), F), AdapterFormatError, 'tensor w', 'found number');
    expectError(() => parseSafetensors(json({ w: { ...one, dtype: 4 } }, 8), F), AdapterFormatError, 'tensor w', 'expected string', 'found number');
    expectError(() => parseSafetensors(json({ w: { ...one, extra: 1 } }, 8), F), AdapterFormatError, 'tensor w', 'field extra');
  });

  it('unsupported and unknown dtypes are named', () => {
    expectError(() => parseSafetensors(json({ w: { dtype: 'F64', shape: [1], data_offsets: [0, 8] } }, 8), F), AdapterFormatError, F, 'unsupported', 'tensor w', 'expected F32 | F16 | BF16', 'found F64');
    expectError(() => parseSafetensors(json({ w: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, 8), F), AdapterFormatError, 'unsupported', 'found I64');
    expectError(() => parseSafetensors(json({ w: { dtype: 'Q4', shape: [1], data_offsets: [0, 8] } }, 8), F), AdapterFormatError, 'unknown tensor dtype', 'found Q4');
  });

  it('shapes must be non-negative integers', () => {
    expectError(() => parseSafetensors(json({ w: { ...one, shape: [-2] } }, 8), F), AdapterFormatError, 'tensor w', 'field shape', 'found [-2]');
    expectError(() => parseSafetensors(json({ w: { ...one, shape: [2.5] } }, 8), F), AdapterFormatError, 'tensor w', 'found [2.5]');
    expectError(() => parseSafetensors(json({ w: { ...one, shape: 2 } }, 8), F), AdapterFormatError, 'tensor w', 'shape');
  });

  it('offsets: non-integers, begin > end, past the end of the data', () => {
    expectError(() => parseSafetensors(json({ w: { ...one, data_offsets: [0, 8.5] } }, 8), F), AdapterFormatError, 'tensor w', 'data_offsets', 'found [0,8.5]');
    expectError(() => parseSafetensors(json({ w: { ...one, data_offsets: [0] } }, 8), F), AdapterFormatError, 'tensor w', 'expected [begin, end]');
    expectError(() => parseSafetensors(json({ w: { ...one, data_offsets: [8, 0] } }, 8), F), AdapterFormatError, 'tensor w', 'begin ≤ end', 'found [8,0]');
    expectError(() => parseSafetensors(json({ w: { ...one, data_offsets: [0, 16] } }, 8), F), AdapterFormatError, F, 'tensor w', 'past the end', 'expected end ≤ 8', 'found 16');
  });

  it('byte length must be numel × itemsize', () => {
    expectError(
      () => parseSafetensors(json({ w: { dtype: 'F16', shape: [2], data_offsets: [0, 8] } }, 8), F),
      AdapterFormatError,
      F,
      'tensor w',
      'expected 4 bytes (2 × 2-byte F16)',
      'found 8 bytes',
    );
  });

  it('overlapping tensors, gaps and trailing bytes', () => {
    const overlap = { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } };
    expectError(() => parseSafetensors(json(overlap, 12), F), AdapterFormatError, F, 'overlaps', 'tensor b', 'expected begin ≥ 8 (end of a)', 'found [4,12]');
    const gap = { a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] } };
    expectError(() => parseSafetensors(json(gap, 12), F), AdapterFormatError, F, 'gap', 'tensor b', 'expected begin = 4', 'found [8,12]');
    expectError(() => parseSafetensors(json({ w: one }, 12), F), AdapterFormatError, F, 'no tensor covers', 'expected 8 bytes', 'found 12 bytes');
    const lead = { w: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } };
    expectError(() => parseSafetensors(json(lead, 12), F), AdapterFormatError, 'gap', 'tensor w', 'expected begin = 0');
  });

  it('duplicate keys are detected', () => {
    const h = `{"w":${JSON.stringify(one)},"w":${JSON.stringify(one)}}`;
    expectError(() => parseSafetensors(raw(h, 8), F), AdapterFormatError, F, 'duplicate', 'tensor w');
    const hm = `{"__metadata__":{"k":"a","k":"b"},"w":${JSON.stringify(one)}}`;
    expectError(() => parseSafetensors(raw(hm, 8), F), AdapterFormatError, 'duplicate', 'tensor k', 'field __metadata__');
    expect(findDuplicateJsonKey('{"a":{"x":1},"b":{"x":"\\"a\\""},"c":["a","a"]}')).toBeUndefined();
    expect(findDuplicateJsonKey('{"a":[{"x":1,"x":2}]}')).toEqual({ key: 'x', path: 'a' });
  });

  it('__metadata__ must map strings to strings', () => {
    expectError(() => parseSafetensors(json({ __metadata__: { format: 1 }, w: one }, 8), F), AdapterFormatError, F, 'field __metadata__.format', 'expected string', 'found number');
    expectError(() => parseSafetensors(json({ __metadata__: ['pt'], w: one }, 8), F), AdapterFormatError, 'field __metadata__', 'found array');
  });

  it('NaN and Inf are reported with the first bad index, unless allowed', () => {
    const b = json({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 12] } }, f32bytes(1, NaN, Infinity));
    expectError(() => parseSafetensors(b, F), NonFiniteError, F, 'tensor w', 'index 1', 'NaN');
    const inf16 = json({ w: { dtype: 'F16', shape: [2], data_offsets: [0, 4] } }, new Uint8Array([0, 0x3c, 0, 0xfc]));
    expectError(() => parseSafetensors(inf16, F), NonFiniteError, 'tensor w', 'index 1', '-Infinity');
    const p = parseSafetensors(b, F, { allowNonFinite: true });
    expect(p.tensors.get('w')!.data[1]).toBeNaN();
  });

  it('a real file cut in half is rejected naming the file', () => {
    const orig = readReal(REAL[0]);
    const half = orig.slice(0, Math.floor(orig.length / 2));
    expectError(() => parseSafetensors(half, 'half.safetensors'), AdapterFormatError, 'half.safetensors', 'past the end', 'data section size');
    // Cut inside the header too.
    expectError(() => parseSafetensors(orig.slice(0, 100), 'x.safetensors'), AdapterFormatError, 'x.safetensors', 'header length');
  });

  it('readSafetensorsHeader validates without decoding', () => {
    const { entries, metadata, dataStart } = readSafetensorsHeader(readReal(REAL[1]));
    expect(entries.length).toBe(72);
    expect(metadata).toEqual({ format: 'pt' });
    expect(dataStart % 8).toBe(0);
  });
});
