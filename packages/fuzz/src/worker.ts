/**
 * Worker thread of `pnpm fuzz`: builds the seeds once, then runs the cases it is sent, posting
 * `start` before and `done` (outcome, input bytes, memory growth) after each, so the main thread
 * can tell a hang (no message for 5 s) from a slow run and attribute it to one case.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { caseRng } from './rng.js';
import { adapterSeeds, modelSeeds } from './seeds.js';
import { adapterCase, modelCase, runAdapterCase, runModelCase } from './targets.js';
import { runTorchCase, torchCase, torchSeeds } from './torch-target.js';

export interface WorkerJob {
  target: 'adapter' | 'model' | 'torch';
  seed: number;
  from: number;
  to: number;
}

export type WorkerMessage =
  | { t: 'ready' }
  | { t: 'start'; i: number }
  | { t: 'done'; i: number; outcome: import('./classify.js').Outcome; what: string; seedName: string; inputBytes: number; grewBytes: number; ms: number };

const port = parentPort!;
const aSeeds = adapterSeeds();
const mSeeds = modelSeeds();
const tSeeds = torchSeeds();

function used(): number {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

port.on('message', async (job: WorkerJob) => {
  for (let i = job.from; i < job.to; i++) {
    port.postMessage({ t: 'start', i } satisfies WorkerMessage);
    const rng = caseRng(job.seed, i);
    const before = used();
    const t0 = performance.now();
    if (job.target === 'adapter') {
      const c = adapterCase(rng, aSeeds);
      const input = (typeof c.config === 'string' ? c.config.length : c.config.length) + c.safetensors.length;
      const outcome = await runAdapterCase(c, aSeeds);
      port.postMessage({ t: 'done', i, outcome, what: `adapter:${c.what}`, seedName: c.seed, inputBytes: input, grewBytes: used() - before, ms: performance.now() - t0 } satisfies WorkerMessage);
    } else if (job.target === 'torch') {
      const c = torchCase(rng, tSeeds);
      let input = 0;
      for (const b of c.files.values()) input += b.length;
      const outcome = await runTorchCase(c, tSeeds);
      port.postMessage({ t: 'done', i, outcome, what: `torch:${c.how}`, seedName: c.seed, inputBytes: input, grewBytes: used() - before, ms: performance.now() - t0 } satisfies WorkerMessage);
    } else {
      const c = modelCase(rng, mSeeds);
      const outcome = runModelCase(c);
      port.postMessage({ t: 'done', i, outcome, what: `model:${c.how}`, seedName: c.seed, inputBytes: c.bytes.length, grewBytes: used() - before, ms: performance.now() - t0 } satisfies WorkerMessage);
    }
  }
  port.postMessage({ t: 'ready' } satisfies WorkerMessage);
});
port.postMessage({ t: 'ready' } satisfies WorkerMessage);
void workerData;
