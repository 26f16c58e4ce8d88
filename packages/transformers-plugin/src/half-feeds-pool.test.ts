/**
 * fp16 graphs (issue 16): the float32 → float16 conversion of adapter feeds happens once, when the
 * feed pool first takes an adapter feeds object, not per run — so a run passes ONNX Runtime the
 * same feeds object as the previous one while the adapter is unchanged, with no per-run copy.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, expect, test } from 'vitest';
import { AutoModelForSequenceClassification, AutoTokenizer, env } from '@huggingface/transformers';
import { createAdapter, toFloat16 } from '@tensorpeft/core';
import { writeModel } from '@tensorpeft/model-gen';
import { castFeedsToInputTypes, fromHalfBits } from './dtype.js';
import { runMerged } from './feed-pool.js';
import { from_pretrained } from './plugin.js';
import type { Feeds } from './ort-feeds.js';

interface F32 {
  type: 'float32';
  data: Float32Array;
  dims: number[];
}
interface F16 {
  type: 'float16';
  bits: Uint16Array;
  dims: readonly number[];
}

test('castFeedsToInputTypes + runMerged: converted once per adapter feeds object; the same feeds object every run while the adapter is unchanged; values = { ...user, ...adapter } converted', async () => {
  const halfNames = ['tensorpeft.m0.A', 'tensorpeft.m0.B', 'tensorpeft.m1.A', 'tensorpeft.m1.B'];
  const session = { inputMetadata: [{ name: 'input_ids', type: 'int64' }, ...halfNames.map((name) => ({ name, type: 'float16' })), { name: 'tensorpeft.param.w', type: 'float32' }] };
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 3 }),
      fc.array(fc.record({ adapter: fc.nat(2), names: fc.constantFrom<string[][]>(['input_ids'], ['input_ids', 'attention_mask']) }), { minLength: 1, maxLength: 12 }),
      fc.array(fc.float({ noNaN: true, min: -1000, max: 1000 }), { minLength: 4, maxLength: 4 }),
      async (nAdapters, steps, vals) => {
        let made = 0;
        const make = (bits: Uint16Array, dims: readonly number[]): F16 => (made++, { type: 'float16', bits, dims });
        // The object the run got and what it held during the run (the pool clears the caller's inputs after).
        const seen: Array<{ obj: Feeds; during: Feeds }> = [];
        const run = castFeedsToInputTypes(session, async (feeds) => (seen.push({ obj: feeds, during: { ...feeds } }), {}), 'tensorpeft.', make);
        const adapters: Feeds[] = [];
        for (let a = 0; a < nAdapters; a++) {
          const f: Feeds = {};
          halfNames.forEach((n, i) => (f[n] = { type: 'float32', data: Float32Array.of(vals[i]! + a), dims: [1, 1] } satisfies F32));
          f['tensorpeft.param.w'] = { type: 'float32', data: Float32Array.of(a), dims: [1] };
          adapters.push(f);
        }
        const last = new Map<number, { obj: Feeds; names: string }>();
        for (const s of steps) {
          const a = s.adapter % nAdapters;
          const user: Feeds = {};
          for (const n of s.names) user[n] = { user: n };
          await runMerged(run as never, adapters[a]!, user, []);
          const { obj, during: got } = seen[seen.length - 1]!;
          // Same adapter, same caller input names as its previous run: the very same object.
          const prev = last.get(a);
          if (prev && prev.names === s.names.join()) expect(obj).toBe(prev.obj);
          last.set(a, { obj, names: s.names.join() });
          // Values: the caller's inputs, the float32 feeds converted (round to nearest even), others as given.
          for (const n of s.names) expect(got[n]).toBe(user[n]);
          halfNames.forEach((n, i) => {
            const t = got[n] as F16;
            expect(t.type).toBe('float16');
            expect(fromHalfBits(t.bits)[0]).toBe(toFloat16(Math.fround(vals[i]! + a)));
          });
          expect(got['tensorpeft.param.w']).toBe(adapters[a]!['tensorpeft.param.w']);
        }
        // One conversion per float16 input of each adapter used, however many runs.
        const used = new Set(steps.map((s) => s.adapter % nAdapters)).size;
        expect(made).toBe(used * halfNames.length);
      },
    ),
    { numRuns: 100 },
  );
});

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

test('fp16 BERT through the plugin: ONNX Runtime gets the same feeds object on every run of an unchanged adapter, float16 adapter tensors; a replaced adapter gets a new one', async () => {
  const root = await mkdtemp(path.join(tmpdir(), 'tp-halfpool-'));
  dirs.push(root);
  const m = await writeModel({ arch: 'bert', size: 'tiny', quantized: false, dtypes: ['fp16'], seed: 2 }, path.join(root, 'bert'));
  env.allowRemoteModels = false;
  env.localModelPath = `${root}/`;
  const tok = await AutoTokenizer.from_pretrained('bert');
  const inputs = tok('same feeds every run');
  // fp16 branches (what WebGPU sessions get): the CPU default is fp32 branches (branch-dtype.ts), with no fp16 feeds to convert.
  const model = await from_pretrained(env, AutoModelForSequenceClassification, 'bert', { dtype: 'fp16', branch_dtype: 'activation' });
  const session = (model as unknown as { sessions: Record<string, { handler: { run: (f: Feeds, ...r: unknown[]) => Promise<unknown> } }> }).sessions['model']!;
  const seen: Feeds[] = [];
  const inner = session.handler.run.bind(session.handler);
  session.handler.run = (f, ...r) => (seen.push(f), inner(f, ...r));
  const call = async (adapter: string | null) => ((await (model as unknown as (x: unknown, o: unknown) => Promise<{ logits: { data: Float32Array } }>)(inputs, { adapter })).logits.data);
  await model.load_adapter(createAdapter({ method: 'LORA', shape: m.shape, nonzero: true, seed: 1 }), { adapter_name: 'a' });
  const outs = [await call('a'), await call('a'), await call('a')];
  expect(seen.length).toBe(3);
  expect(seen[1]).toBe(seen[0]);
  expect(seen[2]).toBe(seen[0]);
  const ours = Object.keys(seen[0]!).filter((k) => k.startsWith('tensorpeft.') && !k.startsWith('tensorpeft.param.'));
  // Every adapter input the graph declares is fed (one pair per module: sibling fusion is opt-in).
  const declared = (session.handler as unknown as { inputNames: string[] }).inputNames.filter((k) => k.startsWith('tensorpeft.') && !k.startsWith('tensorpeft.param.'));
  expect(ours.sort()).toEqual(declared.sort());
  expect(ours.length).toBe(2 * m.shape.modules.length);
  for (const k of ours) expect((seen[0]![k] as { type: string }).type).toBe('float16');
  expect(outs[1]).toEqual(outs[0]);
  await model.load_adapter(createAdapter({ method: 'LORA', shape: m.shape, nonzero: true, seed: 2 }), { adapter_name: 'a', replace: true });
  const replaced = await call('a');
  expect(seen[3]).not.toBe(seen[0]);
  expect(replaced).not.toEqual(outs[0]);
  await (model as unknown as { dispose(): Promise<unknown> }).dispose();
}, 120_000);
