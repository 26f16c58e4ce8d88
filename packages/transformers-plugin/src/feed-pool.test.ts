import fc from 'fast-check';
import { expect, test } from 'vitest';
import { FeedPool, runMerged } from './feed-pool.js';
import type { Feeds } from './ort-feeds.js';

/** The reference: a fresh object per run, as the registry built it before (adapter feeds win). */
const reference = (user: Feeds, adapter: Feeds): Feeds => ({ ...user, ...adapter });

const names = fc.constantFrom('input_ids', 'attention_mask', 'position_ids', 'past.0.key', 'past.0.value', 'tensorpeft.m0.A');

test('FeedPool.take = { ...user, ...adapter } (keys, order, values) over random call sequences, overlapping runs included', () => {
  fc.assert(
    fc.property(
      fc.uniqueArray(fc.string({ minLength: 1, maxLength: 6 }).map((s) => `tensorpeft.${s}`), { minLength: 0, maxLength: 40 }),
      // Each step: the caller's input names, and whether the previous run is still in flight.
      fc.array(fc.record({ keys: fc.uniqueArray(names, { minLength: 1, maxLength: 6 }), overlap: fc.boolean() }), { minLength: 1, maxLength: 12 }),
      (adapterKeys, steps) => {
        const adapter: Feeds = {};
        adapterKeys.forEach((k, i) => (adapter[k] = { adapter: i }));
        if (steps.length % 2) adapter['tensorpeft.m0.A'] = { adapter: 'clash' };
        const pool = new FeedPool(adapter);
        let inFlight: Feeds[] = [];
        steps.forEach((s, step) => {
          if (!s.overlap) {
            for (const f of inFlight) pool.release(f);
            inFlight = [];
          }
          const user: Feeds = {};
          for (const k of s.keys) user[k] = { user: k, step };
          const got = pool.take(user);
          const want = reference(user, adapter);
          expect(Object.keys(got)).toEqual(Object.keys(want));
          for (const k of Object.keys(want)) expect(got[k]).toBe(want[k]);
          // Objects of runs still in flight are never handed out twice.
          for (const f of inFlight) expect(f).not.toBe(got);
          inFlight.push(got);
        });
      },
    ),
    { numRuns: 200 },
  );
});

test('FeedPool: the same input names after a release reuse the merged object (no per-run copy of the adapter feeds)', () => {
  const adapter: Feeds = {};
  for (let i = 0; i < 50; i++) adapter[`tensorpeft.layers.${i}.A`] = { i };
  const pool = new FeedPool(adapter);
  const a = pool.take({ input_ids: 1, attention_mask: 2 });
  pool.release(a);
  // Released: the caller's tensors are no longer referenced.
  expect(a.input_ids).toBeUndefined();
  const b = pool.take({ input_ids: 3, attention_mask: 4 });
  expect(b).toBe(a);
  expect(b.input_ids).toBe(3);
  expect(b['tensorpeft.layers.7.A']).toBe(adapter['tensorpeft.layers.7.A']);
  // Other names: a new object (with exactly those names).
  pool.release(b);
  const c = pool.take({ input_ids: 5 });
  expect(c).not.toBe(a);
  expect(Object.keys(c)).toEqual(['input_ids', ...Object.keys(adapter)]);
});

test('runMerged releases the pooled object when the run settles, also when it rejects or throws', async () => {
  const adapter: Feeds = { 'tensorpeft.x.A': 1 };
  const seen: Feeds[] = [];
  await runMerged(async (f) => seen.push(f), adapter, { x: 1 }, []);
  await expect(runMerged(async () => Promise.reject(new Error('boom')), adapter, { x: 2 }, [])).rejects.toThrow('boom');
  expect(() => runMerged(() => { throw new Error('sync'); }, adapter, { x: 3 }, [])).toThrow('sync');
  await runMerged(async (f) => seen.push(f), adapter, { x: 4 }, []);
  // Released every time, so the last run got the first run's object back, with its own input.
  expect(seen[1]).toBe(seen[0]);
  expect(seen[1]!.x).toBeUndefined();
});
