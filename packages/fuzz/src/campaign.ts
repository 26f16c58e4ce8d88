/**
 * In-process campaigns (the CI-sized vitest run uses these directly; `pnpm fuzz` runs the same
 * cases in a worker thread with a hang watchdog and memory accounting, see main.ts).
 */
import { Tally } from './classify.js';
import { caseRng } from './rng.js';
import { adapterSeeds, modelSeeds, type AdapterSeed, type ModelSeed } from './seeds.js';
import { adapterCase, modelCase, runAdapterCase, runModelCase, type GraphMutation } from './targets.js';

export async function adapterCampaign(opts: { seed: number; cases: number; seeds?: AdapterSeed[]; tally?: Tally; what?: 'config' | 'safetensors' | 'both' }): Promise<Tally> {
  const seeds = opts.seeds ?? adapterSeeds();
  const tally = opts.tally ?? new Tally();
  for (let i = 0; i < opts.cases; i++) {
    const c = adapterCase(caseRng(opts.seed, i), seeds, opts.what);
    tally.add(`adapter:${c.what}`, i, await runAdapterCase(c, seeds), c.seed);
  }
  return tally;
}

export function modelCampaign(opts: { seed: number; cases: number; seeds?: ModelSeed[]; tally?: Tally; how?: 'bytes' | 'graph'; kinds?: readonly GraphMutation[] }): Tally {
  const seeds = opts.seeds ?? modelSeeds();
  const tally = opts.tally ?? new Tally();
  for (let i = 0; i < opts.cases; i++) {
    const c = modelCase(caseRng(opts.seed, i), seeds, opts.how, opts.kinds);
    tally.add(`model:${c.how}`, i, runModelCase(c), c.seed);
  }
  return tally;
}
