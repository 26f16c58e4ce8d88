/**
 * Every kernel against the JS reference backend on random shapes (fast-check): odd sizes, sizes
 * that are not multiples of the 4×8 register tile, rank 1, and the ragged edges of each loop.
 *
 * Tolerance: ‖x − y‖∞ ≤ (K_eff + 2)·2⁻²⁴·‖|y|‖∞ per output, the float32 summation bound for K_eff
 * rounding steps (summation length K plus the multiplications along one term; TT: Σ rLeft + 2,
 * Tucker: Σ R_k + 1, merge: ρ + 2, apply: n + ρ + 2, dense/CP: 2) against the float64 reference,
 * with |y| = the reference on the absolute values of all inputs (= Σ|terms|). It holds for any
 * summation order, so SIMD lanes and tiling may reorder sums freely, while an indexing error
 * shows up as an O(1) relative error, far above 2⁻²⁴·K.
 */
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { JsBackend, ShapeMismatchError, type MatExpr, type MaterializeJob, type ModuleUpdate, type TTCore, type TuckerMode, type WeightLayout } from '@tensorpeft/core';
import { WasmBackend } from '../backend.js';
import { absExpr, exprDepth } from '../selftest.js';
import { expectWithin, mulberry32, positive, randF32 } from '../test-utils/compare.js';
import { permuteAt, planTucker } from './tucker.js';

const js = new JsBackend();
let wasm: WasmBackend;
beforeAll(async () => {
  wasm = await WasmBackend.create();
});

const RUNS = { numRuns: 60 };
const size = (max: number) => fc.oneof(fc.constant(1), fc.integer({ min: 1, max }));

async function checkExpr(e: MatExpr): Promise<void> {
  const [x, y, yAbs] = await Promise.all([wasm.evaluate(e), js.evaluate(e), js.evaluate(absExpr(e))]);
  expectWithin(x, y, yAbs, exprDepth(e), e.kind);
}

const absUpdate = (u: ModuleUpdate): ModuleUpdate => ({ ...u, s: Math.abs(u.s), A: u.A.map(Math.abs), B: u.B.map(Math.abs) });

describe('TT chain (gemm + gate)', () => {
  it('matches JS for random chains, gates, views and transposes', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ size: size(7), rRight: size(9) }), { minLength: 1, maxLength: 4 }),
        fc.boolean(),
        fc.boolean(),
        fc.nat(),
        fc.integer({ min: 0, max: 1e9 }),
        async (spec, gated, transpose, split, seed) => {
          const rng = mulberry32(seed);
          let r = 1;
          const cores: TTCore[] = spec.map(({ size: s, rRight }) => {
            const c = { data: randF32(r * s * rRight, rng), rLeft: r, size: s, rRight };
            r = rRight;
            return c;
          });
          const total = cores.reduce((a, c) => a * c.size, 1) * r;
          const divs = [...Array(total).keys()].map((i) => i + 1).filter((d) => total % d === 0);
          const rows = divs[split % divs.length]!;
          const last = cores[cores.length - 1]!;
          const e: MatExpr = { kind: 'tt', cores, rows, cols: total / rows, transpose };
          if (gated) e.gate = { rank: positive(last.rLeft, rng), mode: positive(last.size, rng) };
          await checkExpr(e);
        },
      ),
      RUNS,
    );
  });

  it('covers the register tile edges: M, N around multiples of 4 and 8, K = 1', async () => {
    const rng = mulberry32(5);
    for (const P of [1, 3, 4, 5, 8, 9]) {
      for (const K of [1, 2, 7]) {
        for (const N of [1, 7, 8, 9, 16, 17]) {
          const cores: TTCore[] = [
            { data: randF32(P * K, rng), rLeft: 1, size: P, rRight: K },
            { data: randF32(K * N, rng), rLeft: K, size: 1, rRight: N },
          ];
          await checkExpr({ kind: 'tt', cores, rows: P, cols: N });
        }
      }
    }
  });

  it('contracts a real TRAC module (BERT-base shapes, gated)', async () => {
    const rng = mulberry32(11);
    const core = (a: number, s: number, b: number): TTCore => ({ data: randF32(a * s * b, rng), rLeft: a, size: s, rRight: b });
    await checkExpr({ kind: 'tt', cores: [core(1, 8, 24), core(24, 8, 36), core(36, 12, 16)], gate: { rank: positive(36, rng), mode: positive(12, rng) }, rows: 768, cols: 16 });
  });
});

describe('dense', () => {
  it('matches JS for random blocks, transposes and scales', async () => {
    await fc.assert(
      fc.asyncProperty(size(23), size(23), fc.nat(), fc.nat(), fc.boolean(), fc.boolean(), fc.boolean(), fc.integer({ min: 0, max: 1e9 }), async (rows, cols, tr, tc, transpose, rs, cs, seed) => {
        const rng = mulberry32(seed);
        const takeRows = 1 + (tr % rows);
        const takeCols = 1 + (tc % cols);
        const oR = transpose ? takeCols : takeRows;
        const oC = transpose ? takeRows : takeCols;
        const e: MatExpr = { kind: 'dense', src: randF32(rows * cols, rng), rows, cols, takeRows, takeCols, transpose };
        if (rs) e.rowScale = randF32(oR, rng);
        if (cs) e.colScale = randF32(oC, rng);
        await checkExpr(e);
      }),
      RUNS,
    );
  });
});

describe('CP expansion', () => {
  it('matches JS', async () => {
    await fc.assert(
      fc.asyncProperty(size(19), size(7), size(13), fc.boolean(), fc.integer({ min: 0, max: 1e9 }), async (p, q, r, scaled, seed) => {
        const rng = mulberry32(seed);
        const e: MatExpr = { kind: 'cp', inner: randF32(p * r, rng), p, outer: randF32(q * r, rng), q, r };
        if (scaled) e.scale = randF32(r, rng);
        await checkExpr(e);
      }),
      RUNS,
    );
  });
});

/**
 * A random Tucker case from a fast-check spec: each mode contracted with a vector, kept, or
 * expanded by an [rows × R] factor; `perm` picks the output order of the surviving modes.
 */
function randomTucker(spec: ReadonlyArray<{ R: number; op: 'vector' | 'keep' | number }>, perm: number, rng: () => number): { modes: TuckerMode[]; surviving: number[]; order: number[]; total: number } {
  const modes: TuckerMode[] = spec.map(({ R, op: o }) =>
    o === 'vector' ? { op: 'vector', v: randF32(R, rng) } : o === 'keep' ? { op: 'keep' } : { op: 'matrix', U: randF32(o * R, rng), rows: o },
  );
  const surviving = spec.filter((s) => s.op !== 'vector').map((s) => (s.op === 'keep' ? s.R : (s.op as number)));
  const order = surviving.map((_, i) => i);
  let p = perm;
  for (let i = order.length - 1; i > 0; i--) {
    const j = p % (i + 1);
    p = Math.floor(p / (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return { modes, surviving, order, total: surviving.reduce((a, b) => a * b, 1) };
}

describe('Tucker', () => {
  it('matches JS for random mode ops and permutations', async () => {
    const op = fc.oneof(fc.constant<'vector'>('vector'), fc.constant<'keep'>('keep'), size(21));
    await fc.assert(
      fc.asyncProperty(fc.array(fc.record({ R: size(5), op }), { minLength: 1, maxLength: 4 }), fc.nat(), fc.nat(), fc.integer({ min: 0, max: 1e9 }), async (spec, perm, split, seed) => {
        const rng = mulberry32(seed);
        const coreDims = spec.map((s) => s.R);
        const { modes, order, total } = randomTucker(spec, perm, rng);
        const divs = [...Array(total).keys()].map((i) => i + 1).filter((d) => total % d === 0);
        const rows = divs[split % divs.length]!;
        await checkExpr({ kind: 'tucker', core: randF32(coreDims.reduce((a, b) => a * b, 1), rng), coreDims, modes, order, rows, cols: total / rows });
      }),
      RUNS,
    );
  });
});

describe('Tucker mode products as tiled GEMMs (csrc/tucker.c)', () => {
  const tucker = (coreDims: number[], modes: TuckerMode[], order: number[], rows: number, cols: number, rng: () => number): MatExpr => ({
    kind: 'tucker',
    core: randF32(coreDims.reduce((a, b) => a * b, 1), rng),
    coreDims,
    modes,
    order,
    rows,
    cols,
  });

  it('covers the per-slice NN GEMM edges: rows around multiples of 4, after around multiples of 8', async () => {
    // [before, R, after] with a factor on the middle mode: dst_b = U · src_b per b; rows % 4 ≠ 0
    // clamps the tile's rows, after % 8 ≠ 0 goes through the packed ragged panel.
    const rng = mulberry32(21);
    for (const before of [1, 3]) {
      for (const R of [1, 3, 8]) {
        for (const rows of [2, 3, 4, 5, 9, 13]) {
          for (const after of [2, 7, 8, 9, 17]) {
            const modes: TuckerMode[] = [{ op: 'keep' }, { op: 'matrix', U: randF32(rows * R, rng), rows }, { op: 'keep' }];
            await checkExpr(tucker([before, R, after], modes, [0, 1, 2], before * rows, after, rng));
          }
        }
      }
    }
  });

  it('covers the last mode: NT GEMM (S·Uᵀ, U packed) for matrices, 4×4-transposed dot products for vectors', async () => {
    const rng = mulberry32(22);
    for (const before of [1, 3, 4, 5, 9, 17]) {
      for (const R of [1, 2, 4, 7]) {
        for (const rows of [0, 1, 7, 8, 9, 17]) {
          // rows = 0 stands for a vector on the last mode (one packed panel, one column).
          const mode: TuckerMode = rows === 0 ? { op: 'vector', v: randF32(R, rng) } : { op: 'matrix', U: randF32(rows * R, rng), rows };
          await checkExpr(tucker([before, R], [{ op: 'keep' }, mode], rows === 0 ? [0] : [1, 0], rows === 0 ? before : rows, rows === 0 ? 1 : before, rng));
        }
      }
    }
  });

  it('covers the vector loop on inner modes: 16-, 8-, 4-wide blocks and scalar columns', async () => {
    const rng = mulberry32(25);
    for (const before of [1, 3]) {
      for (const R of [1, 2, 5]) {
        for (const after of [2, 4, 7, 8, 12, 17, 24, 31]) {
          const modes: TuckerMode[] = [{ op: 'keep' }, { op: 'vector', v: randF32(R, rng) }, { op: 'keep' }];
          await checkExpr(tucker([before, R, after], modes, [1, 0], after, before, rng));
        }
      }
    }
  });

  it('matches JS on random shapes with larger ranks and at least one factor matrix', async () => {
    const mode = fc.oneof(fc.constant<'vector'>('vector'), fc.constant<'keep'>('keep'), fc.integer({ min: 1, max: 19 }));
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ R: fc.integer({ min: 1, max: 10 }), op: mode }), { minLength: 2, maxLength: 4 }),
        fc.integer({ min: 1, max: 19 }),
        fc.boolean(),
        fc.integer({ min: 0, max: 1e9 }),
        async (spec, forcedRows, reverse, seed) => {
          const rng = mulberry32(seed);
          // Force a factor matrix on a random-ish mode so that every run takes a GEMM path.
          const at = seed % spec.length;
          const full = spec.map((s, i) => (i === at ? { ...s, op: forcedRows } : s));
          const modes: TuckerMode[] = full.map(({ R, op: o }) =>
            o === 'vector' ? { op: 'vector', v: randF32(R, rng) } : o === 'keep' ? { op: 'keep' } : { op: 'matrix', U: randF32(o * R, rng), rows: o },
          );
          const surviving = full.filter((s) => s.op !== 'vector').map((s) => (s.op === 'keep' ? s.R : (s.op as number)));
          const order = surviving.map((_, i) => i);
          if (reverse) order.reverse();
          const total = surviving.reduce((a, b) => a * b, 1);
          await checkExpr(tucker(full.map((s) => s.R), modes, order, total, 1, rng));
        },
      ),
      { numRuns: 40 },
    );
  });

  it('permutes early without changing any rounding: bit-identical to permuting the unpermuted result', async () => {
    const mode = fc.oneof(fc.constant<'vector'>('vector'), fc.constant<'keep'>('keep'), fc.integer({ min: 1, max: 13 }));
    await fc.assert(
      fc.asyncProperty(fc.array(fc.record({ R: fc.integer({ min: 1, max: 6 }), op: mode }), { minLength: 2, maxLength: 4 }), fc.nat(), fc.integer({ min: 0, max: 1e9 }), async (spec, perm, seed) => {
        const rng = mulberry32(seed);
        const { modes, surviving, order, total } = randomTucker(spec, perm, rng);
        const core = randF32(spec.reduce((a, s) => a * s.R, 1), rng);
        const coreDims = spec.map((s) => s.R);
        const x = await wasm.evaluate({ kind: 'tucker', core, coreDims, modes, order, rows: total, cols: 1 });
        const z = await wasm.evaluate({ kind: 'tucker', core, coreDims, modes, order: surviving.map((_, i) => i), rows: total, cols: 1 });
        // Permute z in JS: output multi-index (o_0 … o_{d−1}) over order.map(dims) reads z at Σ o_t·stride[order[t]].
        const strides = surviving.map((_, i) => surviving.slice(i + 1).reduce((a, b) => a * b, 1));
        const outDims = order.map((o) => surviving[o]!);
        const expected = new Float32Array(total);
        for (let flat = 0; flat < total; flat++) {
          let rest = flat;
          let src = 0;
          for (let t = outDims.length - 1; t >= 0; t--) {
            src += (rest % outDims[t]!) * strides[order[t]!]!;
            rest = Math.floor(rest / outDims[t]!);
          }
          expected[flat] = z[src]!;
        }
        expect(new Uint32Array(x.buffer, x.byteOffset, x.length)).toEqual(new Uint32Array(expected.buffer));
      }),
      { numRuns: 40 },
    );
  });

  it('permutes TensLoRA B′ before the factor expansions (on the 2048-float core, not the 12288-float result)', () => {
    const rng = mulberry32(24);
    const e = tucker(
      [16, 16, 8, 2, 8],
      [{ op: 'keep' }, { op: 'matrix', U: randF32(64 * 16, rng), rows: 64 }, { op: 'matrix', U: randF32(12 * 8, rng), rows: 12 }, { op: 'vector', v: randF32(2, rng) }, { op: 'vector', v: randF32(8, rng) }],
      [2, 1, 0],
      768,
      16,
      rng,
    );
    const { steps, dims } = planTucker(e as Extract<MatExpr, { kind: 'tucker' }>);
    expect(steps.map((s) => s.op.op)).toEqual(['vector', 'vector', 'matrix', 'matrix']);
    expect(permuteAt(steps, dims.reduce((a, b) => a * b, 1))).toBe(2);
  });

  it('reconstructs a TensLoRA att_qkv_depth B′ at BERT-base size (core 16×16×8×2×8 → 768×16)', async () => {
    const rng = mulberry32(23);
    const modes: TuckerMode[] = [
      { op: 'keep' },
      { op: 'matrix', U: randF32(64 * 16, rng), rows: 64 },
      { op: 'matrix', U: randF32(12 * 8, rng), rows: 12 },
      { op: 'vector', v: randF32(2, rng) },
      { op: 'vector', v: randF32(8, rng) },
    ];
    await checkExpr(tucker([16, 16, 8, 2, 8], modes, [2, 1, 0], 768, 16, rng));
    await checkExpr(tucker([16, 16, 8, 2, 8], modes, [0, 1, 2], 16 * 64, 12, rng));
  });
});

describe('merge W += s·B′A′ᵀ', () => {
  it('matches JS in both layouts', async () => {
    await fc.assert(
      fc.asyncProperty(size(41), size(41), size(19), fc.constantFrom<WeightLayout>('out_in', 'in_out'), fc.integer({ min: 0, max: 1e9 }), async (m, n, rho, layout, seed) => {
        const rng = mulberry32(seed);
        const u: ModuleUpdate = { path: 'w', n, m, rho, s: rng() * 4 - 2, A: randF32(n * rho, rng), B: randF32(m * rho, rng) };
        const W0 = randF32(m * n, rng);
        const [x, y, yAbs] = [W0.slice(), W0.slice(), W0.map(Math.abs)];
        await wasm.merge(x, layout, u);
        await js.merge(y, layout, u);
        await js.merge(yAbs, layout, absUpdate(u));
        expectWithin(x, y, yAbs, rho + 2, `merge ${layout} ${m}x${n}x${rho}`);
      }),
      RUNS,
    );
  });

  it('streams a tall weight through several row chunks', async () => {
    const rng = mulberry32(3);
    const [m, n, rho] = [203, 1029, 5];
    const u: ModuleUpdate = { path: 'w', n, m, rho, s: 0.75, A: randF32(n * rho, rng), B: randF32(m * rho, rng) };
    for (const layout of ['out_in', 'in_out'] as const) {
      const W0 = randF32(m * n, rng);
      const [x, y, yAbs] = [W0.slice(), W0.slice(), W0.map(Math.abs)];
      await wasm.merge(x, layout, u);
      await js.merge(y, layout, u);
      await js.merge(yAbs, layout, absUpdate(u));
      expectWithin(x, y, yAbs, rho + 2, layout);
    }
  });
});

describe('branch apply Y += s·(X A′) B′ᵀ', () => {
  it('matches JS', async () => {
    await fc.assert(
      fc.asyncProperty(size(9), size(45), size(45), size(19), fc.integer({ min: 0, max: 1e9 }), async (rows, n, m, rho, seed) => {
        const rng = mulberry32(seed);
        const u: ModuleUpdate = { path: 'w', n, m, rho, s: rng() * 4 - 2, A: randF32(n * rho, rng), B: randF32(m * rho, rng) };
        const X = randF32(rows * n, rng);
        const Y0 = randF32(rows * m, rng);
        const [x, y, yAbs] = [Y0.slice(), Y0.slice(), Y0.map(Math.abs)];
        await wasm.apply(X, x, rows, u);
        await js.apply(X, y, rows, u);
        await js.apply(X.map(Math.abs), yAbs, rows, absUpdate(u));
        expectWithin(x, y, yAbs, n + rho + 2, `apply ${rows}x${n}->${m} ρ${rho}`);
      }),
      RUNS,
    );
  });
});

describe('materialize (one call for all jobs)', () => {
  it('matches JS for a batch mixing every expression kind and shared inputs', async () => {
    const rng = mulberry32(17);
    const shared = randF32(31 * 9, rng);
    const jobs: MaterializeJob[] = [];
    for (let i = 0; i < 9; i++) {
      const n = 1 + ((i * 7) % 23);
      const m = 1 + ((i * 5) % 31);
      const rho = 1 + (i % 9);
      const a: MatExpr =
        i % 2 === 0
          ? { kind: 'tt', cores: [{ data: randF32(n * 3, rng), rLeft: 1, size: n, rRight: 3 }, { data: randF32(3 * rho, rng), rLeft: 3, size: 1, rRight: rho }], rows: n, cols: rho, gate: { rank: positive(3, rng), mode: positive(1, rng) } }
          : { kind: 'dense', src: randF32(rho * n, rng), rows: rho, cols: n, takeRows: rho, takeCols: n, transpose: true, colScale: randF32(rho, rng) };
      const b: MatExpr =
        i % 3 === 0
          ? { kind: 'dense', src: shared, rows: 31, cols: 9, takeRows: m, takeCols: rho, rowScale: randF32(m, rng) }
          : i % 3 === 1
            ? { kind: 'cp', inner: randF32(m * rho, rng), p: m, outer: randF32(rho, rng), q: 1, r: rho, scale: randF32(rho, rng) }
            : { kind: 'tucker', core: randF32(rho * 2, rng), coreDims: [rho, 2], modes: [{ op: 'keep' }, { op: 'matrix', U: randF32(m * 2, rng), rows: m }], order: [1, 0], rows: m, cols: rho };
      jobs.push({ path: `layer.${i}`, n, m, rho, s: i - 4.5, a, b });
    }
    const xs = await wasm.materialize(jobs);
    const ys = await js.materialize(jobs);
    const as = await js.materialize(jobs.map((j) => ({ ...j, a: absExpr(j.a), b: absExpr(j.b) })));
    expect(xs.map(({ path, n, m, rho, s }) => [path, n, m, rho, s])).toEqual(ys.map(({ path, n, m, rho, s }) => [path, n, m, rho, s]));
    xs.forEach((x, i) => {
      expectWithin(x.A, ys[i]!.A, as[i]!.A, exprDepth(jobs[i]!.a), `${x.path} A′`);
      expectWithin(x.B, ys[i]!.B, as[i]!.B, exprDepth(jobs[i]!.b), `${x.path} B′`);
    });
  });

  it('splits an adapter over several calls only past maxCallBytes, with the same results', async () => {
    const small = await WasmBackend.create({ maxCallBytes: 4096 });
    const rng = mulberry32(23);
    const jobs: MaterializeJob[] = Array.from({ length: 5 }, (_, i) => ({
      path: `m${i}`, n: 20, m: 12, rho: 3, s: 1,
      a: { kind: 'dense', src: randF32(60, rng), rows: 20, cols: 3, takeRows: 20, takeCols: 3 },
      b: { kind: 'cp', inner: randF32(12, rng), p: 4, outer: randF32(9, rng), q: 3, r: 3 },
    }));
    const [x, y] = [await small.materialize(jobs), await wasm.materialize(jobs)];
    expect(x).toEqual(y);
  });
});

describe('shape errors are the reference backend\'s', () => {
  const bad: Array<[string, () => Promise<unknown>, () => Promise<unknown>]> = [
    ['TT rank chain', () => wasm.evaluate(ttBad()), () => js.evaluate(ttBad())],
    ['dense block', () => wasm.evaluate(denseBad()), () => js.evaluate(denseBad())],
    ['merge weight size', () => wasm.merge(new Float32Array(5), 'out_in', upd()), () => js.merge(new Float32Array(5), 'out_in', upd())],
    ['A′ of a job', () => wasm.materialize([jobBad()]), () => js.materialize([jobBad()])],
  ];
  function ttBad(): MatExpr {
    return { kind: 'tt', cores: [{ data: new Float32Array(6), rLeft: 1, size: 3, rRight: 2 }, { data: new Float32Array(9), rLeft: 3, size: 3, rRight: 1 }], rows: 9, cols: 1 };
  }
  function denseBad(): MatExpr {
    return { kind: 'dense', src: new Float32Array(6), rows: 2, cols: 3, takeRows: 3, takeCols: 1 };
  }
  function upd(): ModuleUpdate {
    return { path: 'w', n: 2, m: 3, rho: 1, s: 1, A: new Float32Array(2), B: new Float32Array(3) };
  }
  function jobBad(): MaterializeJob {
    return { path: 'q', n: 4, m: 2, rho: 1, s: 1, a: { kind: 'dense', src: new Float32Array(3), rows: 3, cols: 1, takeRows: 3, takeCols: 1 }, b: { kind: 'dense', src: new Float32Array(2), rows: 2, cols: 1, takeRows: 2, takeCols: 1 } };
  }
  for (const [name, w, j] of bad) {
    it(name, async () => {
      const je = await j().then(() => undefined, (e: unknown) => e);
      const we = await w().then(() => undefined, (e: unknown) => e);
      expect(je).toBeInstanceOf(ShapeMismatchError);
      expect(we).toBeInstanceOf(ShapeMismatchError);
      expect((we as Error).message).toBe((je as Error).message);
    });
  }
});
