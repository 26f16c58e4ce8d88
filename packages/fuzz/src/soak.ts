/**
 * Hot-swap soak: seeded operations on a tiny BERT classifier through the plugin — load, run,
 * set_adapter, disable, unload and replace, with runs left in flight across the others — and every
 * run's logits compared with the solo output of the adapter that was active when the run started.
 * The comparison is bit for bit: the same session and feeds run either way, so any difference is an
 * adapter mixed up or torn by a swap.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AutoModelForSequenceClassification, AutoTokenizer, env } from '@huggingface/transformers';
import { createAdapter, type Adapter } from '@tensorpeft/core';
import { writeModel } from '@tensorpeft/model-gen';
import { from_pretrained } from '@tensorpeft/transformers-plugin';
import { caseRng } from './rng.js';

export interface SoakResult {
  ops: number;
  runs: number;
  /** Runs whose logits equalled their reference bit for bit. */
  correct: number;
  wrong: number;
  /** Operations that threw (every operation the soak issues is valid, so any error is a finding). */
  errors: number;
  /** Distinct solo references (base + every adapter spec): equal ones would let a mix-up pass unseen. */
  distinctRefs: number;
  specs: number;
  first?: string;
}

const ID = 'soak-bert-tiny';
const NAMES = ['a', 'b', 'c', 'd'];
const SPECS: Array<{ method: Parameters<typeof createAdapter>[0]['method']; seed: number; config?: Record<string, unknown> }> = [
  { method: 'LORA', seed: 1 },
  { method: 'LORA', seed: 2, config: { r: 4 } },
  { method: 'VERA', seed: 3 },
  { method: 'TENSLORA', seed: 4 },
  { method: 'LORA', seed: 5 },
  { method: 'VERA', seed: 6 },
];

type Model = { (x: unknown): Promise<{ logits: { data: Float32Array } }> } & {
  load_adapter(source: Adapter, opts: { adapter_name: string; replace?: boolean }): Promise<unknown>;
  set_adapter(name: string): void;
  disable_adapters(): void;
  unload_adapter(name: string): void;
};

export async function soak(opts: { seed: number; ops: number }): Promise<SoakResult> {
  const root = await mkdtemp(path.join(tmpdir(), 'tp-soak-'));
  const prev = { remote: env.allowRemoteModels, local: env.localModelPath };
  try {
    const gen = await writeModel({ arch: 'bert', size: 'tiny', numLabels: 3, seed: 3 }, path.join(root, ID));
    env.allowRemoteModels = false;
    env.localModelPath = `${root}/`;
    const tok = await AutoTokenizer.from_pretrained(ID);
    const inputs = tok(['i feel happy today', 'a second, longer text to classify'], { padding: true }) as Record<string, unknown>;
    const model = (await from_pretrained(env, AutoModelForSequenceClassification, ID, { dtype: 'fp32' })) as unknown as Model;
    const adapter = (i: number): Adapter => createAdapter({ method: SPECS[i]!.method, shape: gen.shape, nonzero: true, seed: SPECS[i]!.seed, ...(SPECS[i]!.config ? { config: SPECS[i]!.config } : {}) });
    const run = async (): Promise<string> => Array.from((await model({ ...inputs })).logits.data).join(',');

    // Solo references: each adapter alone, and the base (-1).
    const ref = new Map<number, string>();
    model.disable_adapters();
    ref.set(-1, await run());
    for (let i = 0; i < SPECS.length; i++) {
      await model.load_adapter(adapter(i), { adapter_name: 'solo' });
      model.set_adapter('solo');
      ref.set(i, await run());
      model.unload_adapter('solo');
    }

    const res: SoakResult = { ops: 0, runs: 0, correct: 0, wrong: 0, errors: 0, distinctRefs: new Set(ref.values()).size, specs: SPECS.length };
    const loaded = new Map<string, number>();
    let active: string | null = null;
    const inFlight: Array<Promise<void>> = [];
    const rng = caseRng(opts.seed, 0);
    const fail = (what: string): void => {
      if (!res.first) res.first = what;
    };
    for (let op = 0; op < opts.ops; op++) {
      res.ops++;
      const k = rng.int(10);
      try {
        if (k < 5) {
          // Run, left in flight; expected: the adapter active now (a later swap must not reach it).
          const expect = active === null ? -1 : loaded.get(active)!;
          res.runs++;
          inFlight.push(
            run().then((got) => {
              if (got === ref.get(expect)) res.correct++;
              else {
                res.wrong++;
                fail(`op ${op}: run expected adapter spec ${expect}, got other logits`);
              }
            }),
          );
          if (inFlight.length >= 8) await Promise.all(inFlight.splice(0));
        } else if (k === 5 || k === 6) {
          // Load a free name, or replace a loaded one (in place, runs in flight keep the old one).
          const name = rng.pick(NAMES);
          const spec = rng.int(SPECS.length);
          await model.load_adapter(adapter(spec), { adapter_name: name, ...(loaded.has(name) ? { replace: true } : {}) });
          loaded.set(name, spec);
        } else if (k === 7) {
          const names = [...loaded.keys()];
          if (names.length) {
            active = rng.pick(names);
            model.set_adapter(active);
          }
        } else if (k === 8) {
          model.disable_adapters();
          active = null;
        } else {
          const names = [...loaded.keys()];
          if (names.length) {
            const name = rng.pick(names);
            model.unload_adapter(name);
            loaded.delete(name);
            if (active === name) active = null;
          }
        }
      } catch (e) {
        res.errors++;
        fail(`op ${op}: ${(e as Error).name}: ${(e as Error).message}`);
      }
    }
    await Promise.all(inFlight);
    return res;
  } finally {
    env.allowRemoteModels = prev.remote;
    env.localModelPath = prev.local;
    await rm(root, { recursive: true, force: true });
  }
}
