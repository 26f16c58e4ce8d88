/**
 * Worker threads (opt-in): an adapter materialized over two lanes — one on this thread, one on a
 * worker sharing the memory — equals the single-threaded result exactly (same op sequence per
 * module), and a worker that cannot start leaves the backend single-threaded and correct.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { createAdapter, JsBackend, materializeAdapter, presetShape } from '@tensorpeft/core';
import { WasmBackend } from './backend.js';
import { absExpr, exprDepth } from './selftest.js';
import { expectWithin } from './test-utils/compare.js';

const made: WasmBackend[] = [];
afterAll(() => made.forEach((b) => b.release()));

describe('threads', () => {
  it('two threads give the single-threaded result, bit for bit, and match JS', async () => {
    const mt = await WasmBackend.create({ threads: 2 });
    made.push(mt);
    expect(await mt.threadsReady()).toBe(2);
    const st = await WasmBackend.create({ threads: 1 });
    for (const [method, config] of [
      ['trac', {}],
      ['tenslora', { construction: 'att_qkv_depth', ranks: [16, 16, 8, 2, 8], target_modules: ['query', 'value'] }],
    ] as const) {
      const a = createAdapter({ method, config, shape: presetShape('bert-base'), seed: 2, nonzero: true });
      const xs = await materializeAdapter(a, mt);
      const ys = await materializeAdapter(a, st);
      expect(xs.length).toBe(24);
      xs.forEach((x, i) => {
        expect(x.path).toBe(ys[i]!.path);
        expect(Buffer.from(x.A.buffer).equals(Buffer.from(ys[i]!.A.buffer))).toBe(true);
        expect(Buffer.from(x.B.buffer).equals(Buffer.from(ys[i]!.B.buffer))).toBe(true);
      });
      const js = new JsBackend();
      const jobs = a.method.jobs(a.config, a.plan, a.params);
      const ref = await js.materialize(jobs.slice(0, 2));
      const abs = await js.materialize(jobs.slice(0, 2).map((j) => ({ ...j, a: absExpr(j.a), b: absExpr(j.b) })));
      ref.forEach((y, i) => {
        expectWithin(xs[i]!.A, y.A, abs[i]!.A, exprDepth(jobs[i]!.a), `${method} A′`);
        expectWithin(xs[i]!.B, y.B, abs[i]!.B, exprDepth(jobs[i]!.b), `${method} B′`);
      });
    }
  });

  it('falls back to one thread when the worker cannot start', async () => {
    const b = await WasmBackend.create({ threads: 2, workerUrl: new URL('./no-such-worker.js', import.meta.url) });
    made.push(b);
    expect(await b.threadsReady()).toBe(1);
    expect(b.threadsUnavailable).toMatch(/worker threads could not start/);
    const a = createAdapter({ method: 'trac', shape: presetShape('bert-base'), seed: 2, nonzero: true });
    const st = await WasmBackend.create();
    const [x, y] = [await materializeAdapter(a, b), await materializeAdapter(a, st)];
    expect(x).toEqual(y);
  });

  it('falls back to the single-threaded build when the threaded one is broken', async () => {
    const b = await WasmBackend.create({ threads: 2, threadedSource: new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 9]) });
    made.push(b);
    expect(b.threads).toBe(1);
    expect(b.threadsUnavailable).toMatch(/threaded kernels unavailable/);
    expect((await b.evaluate({ kind: 'cp', inner: new Float32Array([1, 2]), p: 1, outer: new Float32Array([3, 4]), q: 1, r: 2 })).join()).toBe('3,8');
  });
});
