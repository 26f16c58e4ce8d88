import fc from 'fast-check';
import { zipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { AdapterFormatError, NonFiniteError, TensorPeftError } from '../../errors.js';
import { readTorchCheckpoint, readTorchStateDict } from './checkpoint.js';
import { UnsafePickleError } from './errors.js';
import { unpickle } from './pickle.js';
import { PickleWriter, tensorW, writeTorchStateDict, torchSaveZip, type W } from './writer.js';
import { PyDict, PyObject, TorchTensor } from './values.js';

const f32bytes = (a: Float32Array): Uint8Array => new Uint8Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength));

function randomTensor(shape: number[], seed: number): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

function expectError(fn: () => unknown, ctor: new (...a: any[]) => Error, found?: string): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(ctor);
  if (found !== undefined) expect(String((err as TensorPeftError).details.found)).toContain(found);
}

describe('torch.save state dicts', () => {
  it('reads back every tensor bit for bit (random names and shapes)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.stringMatching(/^[a-z_.0-9]{1,30}$/), fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 0, maxLength: 4 }), fc.integer()), {
          minLength: 1,
          maxLength: 6,
        }),
        (specs) => {
          const byName = new Map<string, { shape: number[]; data: Float32Array }>();
          specs.forEach(([name, shape, seed]) => byName.set(name, { shape, data: randomTensor(shape, seed) }));
          const read = readTorchStateDict(writeTorchStateDict(byName), { file: 'x.bin' });
          expect([...read.keys()]).toEqual([...byName.keys()]);
          for (const [k, t] of byName) {
            expect(read.get(k)!.shape).toEqual(t.shape);
            expect(read.get(k)!.data).toEqual(t.data);
          }
        },
      ),
      { numRuns: 40 },
    );
  });

  it('gathers strided views (a transpose) and offsets into a shared storage', () => {
    const base = randomTensor([3, 4], 7); // storage of 12, viewed as [3,4] and as its transpose [4,3]
    const pkl = PickleWriter.pickle({
      odict: [
        ['w', tensorW('0', 12, [3, 4])],
        ['wt', tensorW('0', 12, [4, 3], { stride: [1, 4] })],
        ['row2', tensorW('0', 12, [4], { offset: 8 })],
      ],
    });
    const sd = readTorchStateDict(torchSaveZip(pkl, [{ key: '0', bytes: f32bytes(base) }]));
    const wt = sd.get('wt')!;
    for (let i = 0; i < 4; i++) for (let j = 0; j < 3; j++) expect(wt.data[i * 3 + j]).toBe(base[j * 4 + i]);
    expect([...sd.get('row2')!.data]).toEqual([...base.subarray(8, 12)]);
  });

  it('decodes half and bfloat16 storages', () => {
    // 1.0 = 0x3c00 (f16), -2.0 = 0xc000; bf16 1.5 = 0x3fc0
    const half = new Uint8Array([0x00, 0x3c, 0x00, 0xc0]);
    const bf = new Uint8Array([0xc0, 0x3f]);
    const pkl = PickleWriter.pickle({ odict: [['h', tensorW('0', 2, [2], { storageType: 'HalfStorage' })], ['b', tensorW('1', 1, [1], { storageType: 'BFloat16Storage' })]] });
    const sd = readTorchStateDict(torchSaveZip(pkl, [{ key: '0', bytes: half }, { key: '1', bytes: bf }]));
    expect([...sd.get('h')!.data]).toEqual([1, -2]);
    expect([...sd.get('b')!.data]).toEqual([1.5]);
  });

  it('reads nn.Parameter entries and module objects as inert records', () => {
    const pkl = PickleWriter.pickle({
      newobj: ['torch.nn.modules.container', 'ParameterList'],
      args: [],
      state: { dict: [['_parameters', { odict: [['0', tensorW('0', 2, [2], { parameter: true })]] }], ['training', true]] },
    });
    const ck = readTorchCheckpoint(torchSaveZip(pkl, [{ key: '0', bytes: f32bytes(new Float32Array([1, 2])) }]));
    expect(ck.root).toBeInstanceOf(PyObject);
    const obj = ck.root as PyObject;
    expect(obj.cls.qualified).toBe('torch.nn.modules.container.ParameterList');
    const params = (obj.state as PyDict).get('_parameters') as PyDict;
    const p = params.get('0') as TorchTensor;
    expect(p).toBeInstanceOf(TorchTensor);
    expect(p.parameter).toBe(true);
  });
});

describe('the restricted unpickler refuses code', () => {
  const attacks: [string, Uint8Array][] = [
    ['os.system', PickleWriter.pickle({ reduce: { global: ['os', 'system'] }, args: ['echo pwned'] })],
    ['posix.system', PickleWriter.pickle({ reduce: { global: ['posix', 'system'] }, args: ['id'] })],
    ['builtins.eval', PickleWriter.pickle({ reduce: { global: ['builtins', 'eval'] }, args: ["__import__('os').system('id')"] })],
    ['builtins.exec', PickleWriter.pickle({ reduce: { global: ['builtins', 'exec'] }, args: ['import os'] })],
    ['builtins.getattr', PickleWriter.pickle({ reduce: { global: ['builtins', 'getattr'] }, args: [{ global: ['torch', 'FloatStorage'] }, 'from_file'] })],
    ['subprocess.Popen', PickleWriter.pickle({ newobj: ['subprocess', 'Popen'], args: [{ list: ['sh'] }] })],
    ['torch.load', PickleWriter.pickle({ reduce: { global: ['torch', 'load'] }, args: ['/etc/passwd'] })],
    ['torch.serialization.load', PickleWriter.pickle({ reduce: { global: ['torch.serialization', 'load'] }, args: ['x'] })],
    ['numpy.core.multiarray._reconstruct', PickleWriter.pickle({ reduce: { global: ['numpy.core.multiarray', '_reconstruct'] }, args: [] })],
  ];
  for (const [name, bytes] of attacks) {
    it(`refuses ${name} by name`, () => {
      expectError(() => unpickle(bytes), UnsafePickleError, name);
      expect(new UnsafePickleError('x').code).toBe('UNSAFE_PICKLE');
      // Inside a checkpoint too, and the error names the global.
      expectError(() => readTorchCheckpoint(torchSaveZip(bytes, [])), UnsafePickleError, name);
    });
  }

  it('refuses a global reached through STACK_GLOBAL (protocol 4)', () => {
    const enc = (s: string) => [0x8c, s.length, ...new TextEncoder().encode(s)];
    const bytes = new Uint8Array([0x80, 4, ...enc('os'), ...enc('system'), 0x93, ...enc('id'), 0x85, 0x52, 0x2e]);
    expectError(() => unpickle(bytes), UnsafePickleError, 'os.system');
  });

  it('refuses calling an allowed class-like global that is not callable (torch.FloatStorage)', () => {
    const bytes = PickleWriter.pickle({ reduce: { global: ['torch', 'FloatStorage'] }, args: [] });
    expectError(() => unpickle(bytes), AdapterFormatError, 'torch.FloatStorage');
  });
});

describe('malformed checkpoints give typed errors', () => {
  const good = writeTorchStateDict([['a', { shape: [2, 3], data: randomTensor([2, 3], 1) }]]);

  it('legacy format, not a zip, missing data.pkl, compressed entries, big-endian', () => {
    expectError(() => readTorchCheckpoint(new Uint8Array([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e])), AdapterFormatError, 'legacy');
    expectError(() => readTorchCheckpoint(new Uint8Array([1, 2, 3, 4, 5])), AdapterFormatError, '01 02 03 04');
    expectError(() => readTorchCheckpoint(zipSync({ 'archive/version': [new Uint8Array([51]), { level: 0 }] })), AdapterFormatError);
    expectError(() => readTorchCheckpoint(zipSync({ 'archive/data.pkl': [new Uint8Array(1000).fill(0x4e), { level: 9 }] })), AdapterFormatError, '8');
    const be = zipSync({ 'archive/data.pkl': [PickleWriter.pickle(null), { level: 0 }], 'archive/byteorder': [new TextEncoder().encode('big'), { level: 0 }] });
    expectError(() => readTorchCheckpoint(be), AdapterFormatError, 'big');
  });

  it('a storage record of the wrong size, a view past its storage, a missing record', () => {
    const pkl = PickleWriter.pickle({ odict: [['a', tensorW('0', 6, [2, 3])]] });
    expectError(() => readTorchStateDict(torchSaveZip(pkl, [{ key: '0', bytes: new Uint8Array(20) }])), AdapterFormatError, '20 bytes');
    const past = PickleWriter.pickle({ odict: [['a', tensorW('0', 6, [2, 3], { offset: 1 })]] });
    expectError(() => readTorchStateDict(torchSaveZip(past, [{ key: '0', bytes: new Uint8Array(24) }])), AdapterFormatError);
    expectError(() => readTorchStateDict(torchSaveZip(pkl, [])), AdapterFormatError, 'nothing');
    // A stride-0 view of 2^28 elements over a 1-element storage: refused before allocating.
    const expand = PickleWriter.pickle({ odict: [['a', tensorW('0', 1, [1 << 14, 1 << 14], { stride: [0, 0] })]] });
    expect(() => readTorchStateDict(torchSaveZip(expand, [{ key: '0', bytes: new Uint8Array(4) }]))).toThrow(/overlapping strides/);
  });

  it('NaN values are a NonFiniteError naming the tensor', () => {
    const bad = writeTorchStateDict([['lora.x', { shape: [2], data: new Float32Array([1, NaN]) }]]);
    expectError(() => readTorchStateDict(bad), NonFiniteError);
    expect(readTorchStateDict(bad, { allowNonFinite: true }).get('lora.x')!.data[1]).toBeNaN();
  });

  it('huge declared string lengths and unknown opcodes are refused before allocating', () => {
    expectError(() => unpickle(new Uint8Array([0x80, 2, 0x58, 0xff, 0xff, 0xff, 0x7f, 0x41])), AdapterFormatError, 'bytes left');
    expectError(() => unpickle(new Uint8Array([0x80, 2, 0x8d, 0, 0, 0, 0, 0, 0, 0, 0x40, 0x2e])), AdapterFormatError);
    expectError(() => unpickle(new Uint8Array([0x80, 2, 0x69, 0x2e])), AdapterFormatError, '0x69');
    expectError(() => unpickle(new Uint8Array([0x80, 2, 0x2e])), AdapterFormatError);
  });

  it('mutated files fail with typed errors only (never a crash, hang or foreign exception)', () => {
    // Tolerance: none — any non-TensorPeftError is a bug. 300 seeded mutations of a valid file.
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(good.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), fc.nat(good.length), (muts, cut) => {
        const b = good.slice(0, Math.max(cut, good.length - 40));
        for (const [i, v] of muts) if (i < b.length) b[i] = v;
        try {
          readTorchStateDict(b);
        } catch (e) {
          if (!(e instanceof TensorPeftError)) throw e;
        }
      }),
      { numRuns: 300 },
    );
  });
});
