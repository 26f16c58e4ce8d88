/**
 * Whole adapters of every registered method (tiny models, odd sizes, rank 1 variants) materialize
 * on the wasm backend — in one batched call — to the JS reference's (A′, B′, s) within the
 * selftest tolerance (see selftest.ts), and the selftest itself passes.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { buildShape, createAdapter, JsBackend, listMethods, materializeAdapter, presetShape } from '@tensorpeft/core';
import { WasmBackend } from './backend.js';
import { absExpr, exprDepth, runSelftest, TINY_CONFIGS } from './selftest.js';
import { expectWithin } from './test-utils/compare.js';

const js = new JsBackend();
let wasm: WasmBackend;
beforeAll(async () => {
  wasm = await WasmBackend.create();
});

const tiny = buildShape('bert', { hiddenSize: 18, numLayers: 2, numHeads: 3, numKvHeads: 3, intermediateSize: 30 }, 'tiny-bert');

describe('materialize every method', () => {
  it('has a tiny config for each registered method', () => {
    expect(listMethods().map((m) => m.peftType).filter((t) => !TINY_CONFIGS[t])).toEqual([]);
  });

  for (const method of listMethods()) {
    for (const config of TINY_CONFIGS[method.peftType] ?? []) {
      it(`${method.cliName} ${JSON.stringify(config)}`, async () => {
        const a = createAdapter({ method, config, shape: tiny, seed: 9, nonzero: true });
        const jobs = a.method.jobs(a.config, a.plan, a.params);
        const xs = await materializeAdapter(a, wasm);
        const ys = await materializeAdapter(a, js);
        const as = await js.materialize(jobs.map((j) => ({ ...j, a: absExpr(j.a), b: absExpr(j.b) })));
        expect(xs.length).toBe(a.plan.modules.length);
        expect(xs.map(({ path, n, m, rho, s }) => ({ path, n, m, rho, s }))).toEqual(ys.map(({ path, n, m, rho, s }) => ({ path, n, m, rho, s })));
        xs.forEach((x, i) => {
          expectWithin(x.A, ys[i]!.A, as[i]!.A, exprDepth(jobs[i]!.a), `${x.path} A′`);
          expectWithin(x.B, ys[i]!.B, as[i]!.B, exprDepth(jobs[i]!.b), `${x.path} B′`);
        });
      });
    }
  }

  it('TRAC on BERT-base q,v (24 modules) in one call', async () => {
    const a = createAdapter({ method: 'trac', shape: presetShape('bert-base'), seed: 1, nonzero: true });
    const jobs = a.method.jobs(a.config, a.plan, a.params);
    const run = wasm.materialize.bind(wasm);
    let calls = 0;
    const spy = wasm as unknown as { materialize: typeof run };
    spy.materialize = async (j) => {
      calls++;
      return run(j);
    };
    const xs = await materializeAdapter(a, wasm);
    spy.materialize = run;
    expect(calls).toBe(1);
    const ys = await js.materialize(jobs);
    const as = await js.materialize(jobs.map((j) => ({ ...j, a: absExpr(j.a), b: absExpr(j.b) })));
    xs.forEach((x, i) => {
      expectWithin(x.A, ys[i]!.A, as[i]!.A, exprDepth(jobs[i]!.a), `${x.path} A′`);
      expectWithin(x.B, ys[i]!.B, as[i]!.B, exprDepth(jobs[i]!.b), `${x.path} B′`);
    });
  });
});

describe('selftest', () => {
  it('passes on the wasm backend, with the error far below the bound', async () => {
    const r = await runSelftest(wasm, { rounds: 6, seed: 4 });
    expect(r.failures).toEqual([]);
    expect(r.backend).toBe('wasm');
    expect(r.passed).toBeGreaterThan(80);
    expect(r.max_rel_err).toBeLessThan(1e-5);
    expect(r.max_err_over_bound).toBeLessThanOrEqual(1);
  });

  it('catches a backend that is off by one float32 ulp-scale perturbation in one element', async () => {
    const broken = {
      name: 'broken',
      evaluate: async (e: Parameters<WasmBackend['evaluate']>[0]) => {
        const x = await wasm.evaluate(e);
        if (x.length > 0) x[x.length >> 1] = x[x.length >> 1]! * (1 + 1e-5) + 1e-5;
        return x;
      },
      materialize: wasm.materialize.bind(wasm),
      merge: wasm.merge.bind(wasm),
      apply: wasm.apply.bind(wasm),
    };
    const r = await runSelftest(broken, { rounds: 3, realistic: false });
    expect(r.failed).toBeGreaterThan(0);
    expect(r.failures.every((f) => f.kernel.startsWith('evaluate:'))).toBe(true);
  });
});
