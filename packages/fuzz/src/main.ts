/**
 * `pnpm fuzz`: the full campaign. Adapter files and configs of every method (default 100,000
 * cases), model bytes through the rewrite (5,000), and every hostile-server behaviour against
 * `loadAdapter`. Cases run in a worker thread with a 5 s watchdog (a case that posts nothing for
 * 5 s is a hang: the worker is replaced and the campaign goes on) and a 2 GiB heap limit (a case
 * that exhausts it is a crash). Prints a summary (or JSON with --json); exits 1 on any finding.
 *
 *   pnpm fuzz [--adapter-cases N] [--model-cases N] [--torch-cases N] [--soak-ops N] [--seed S] [--json]
 */
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { Tally } from './classify.js';
import { httpCampaign, type HttpResult } from './http.js';
import { adapterSeeds } from './seeds.js';
import { soak } from './soak.js';
import type { WorkerJob, WorkerMessage } from './worker.js';

const HANG_MS = 5000;
const STARTUP_MS = 180_000;
const MiB = 1 << 20;

interface Stats {
  tally: Tally;
  maxMs: number;
  /** Largest memory growth over a case (heap + array buffers retained at its end), and its bound. */
  worstGrowth: { grew: number; bound: number; input: number; i: number };
  overBound: number;
  seconds: number;
}

function startWorker(): Worker {
  // Workers do not inherit tsx's loader: register it inside the worker, then load the TS module.
  const url = new URL('./worker.ts', import.meta.url).href;
  const boot = `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(url)}); })`;
  return new Worker(boot, { eval: true, resourceLimits: { maxOldGenerationSizeMb: 2048 } });
}

/** Run cases [0, n) of a target, replacing the worker after a hang or crash. */
async function runTarget(target: WorkerJob['target'], seed: number, n: number, progress: (done: number) => void): Promise<Stats> {
  const tally = new Tally();
  const st: Stats = { tally, maxMs: 0, worstGrowth: { grew: 0, bound: 0, input: 0, i: -1 }, overBound: 0, seconds: 0 };
  const t0 = performance.now();
  let next = 0;
  let startupFailed: Error | undefined;
  while (next < n) {
    if (startupFailed) throw startupFailed;
    const w = startWorker();
    const from = next;
    await new Promise<void>((resolve) => {
      let current = -1;
      let timer: ReturnType<typeof setTimeout> | undefined;
      let finished = false;
      const finish = () => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        void w.terminate();
        resolve();
      };
      const arm = () => {
        clearTimeout(timer);
        // Startup (tsx, seeds) is not a case: it gets STARTUP_MS, every case HANG_MS.
        timer = setTimeout(() => {
          if (!started || (current < 0 && next === from)) {
            startupFailed = new Error(`fuzz worker did not start within ${STARTUP_MS} ms`);
            return finish();
          }
          // No message for HANG_MS: the case in flight hangs (or the worker never started).
          const i = current >= 0 ? current : next;
          tally.add(target, i, { kind: 'hang', message: `no progress for ${HANG_MS} ms` });
          next = i + 1;
          finish();
        }, started && !(current < 0 && next === from) ? HANG_MS : STARTUP_MS);
      };
      let started = false;
      w.on('message', (m: WorkerMessage) => {
        arm();
        if (m.t === 'ready') {
          if (!started) {
            started = true;
            w.postMessage({ target, seed, from, to: n } satisfies WorkerJob);
          } else finish();
        } else if (m.t === 'start') current = m.i;
        else {
          tally.add(m.what, m.i, m.outcome, m.seedName);
          st.maxMs = Math.max(st.maxMs, m.ms);
          const bound = 32 * m.inputBytes + 64 * MiB;
          if (m.grewBytes > st.worstGrowth.grew) st.worstGrowth = { grew: m.grewBytes, bound, input: m.inputBytes, i: m.i };
          if (m.grewBytes > bound) st.overBound++;
          next = m.i + 1;
          current = -1;
          if (next % 1000 === 0) progress(next);
        }
      });
      w.on('error', (e) => {
        if (!started) {
          startupFailed = new Error(`fuzz worker failed to start: ${e.message}`);
          return finish();
        }
        const i = current >= 0 ? current : next;
        tally.add(target, i, { kind: 'crash', message: `worker died: ${e.message}` });
        next = i + 1;
        finish();
      });
      w.on('exit', () => finish());
      arm();
    });
  }
  st.seconds = (performance.now() - t0) / 1000;
  return st;
}

function table(title: string, s: Stats): string {
  const lines = [`${title}: ${s.tally.cases} cases in ${s.seconds.toFixed(0)} s (slowest case ${s.maxMs.toFixed(0)} ms)`];
  for (const [k, v] of [...s.tally.counts].sort((a, b) => b[1] - a[1])) lines.push(`  ${k.padEnd(34)} ${v}`);
  lines.push(`  largest memory growth over one case: ${(s.worstGrowth.grew / MiB).toFixed(1)} MiB (input ${(s.worstGrowth.input / 1024).toFixed(0)} KiB, bound 32×input + 64 MiB = ${(s.worstGrowth.bound / MiB).toFixed(0)} MiB); cases over their bound: ${s.overBound}`);
  for (const f of s.tally.findings.slice(0, 10)) lines.push(`  FINDING ${f.target} #${f.index} (${f.note ?? ''}): ${JSON.stringify(f.outcome).slice(0, 400)}`);
  return lines.join('\n');
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      'adapter-cases': { type: 'string', default: '100000' },
      'model-cases': { type: 'string', default: '5000' },
      'torch-cases': { type: 'string', default: '20000' },
      'soak-ops': { type: 'string', default: '10000' },
      seed: { type: 'string', default: '15' },
      json: { type: 'boolean', default: false },
    },
  });
  const seed = Number(values.seed);
  const say = (s: string) => process.stderr.write(`${s}\n`);
  const t0 = performance.now();
  const adapters = await runTarget('adapter', seed, Number(values['adapter-cases']), (d) => say(`adapter cases: ${d}`));
  const models = await runTarget('model', seed, Number(values['model-cases']), (d) => say(`model cases: ${d}`));
  const torch = await runTarget('torch', seed, Number(values['torch-cases']), (d) => say(`official checkpoint cases: ${d}`));
  const s = adapterSeeds({ real: false })[0]!;
  const http: HttpResult[] = await httpCampaign({ config: s.config, safetensors: s.safetensors });
  // The soak runs here (onnxruntime in the main thread); RSS before and after tells a leak per cycle.
  const rssBefore = process.memoryUsage().rss;
  const tSoak = performance.now();
  const sk = await soak({ seed, ops: Number(values['soak-ops']) });
  const soakSeconds = (performance.now() - tSoak) / 1000;
  const rssAfter = process.memoryUsage().rss;
  const soakFindings = sk.wrong + sk.errors + (sk.distinctRefs === sk.specs + 1 ? 0 : 1);
  const peakRssMiB = process.resourceUsage().maxRSS / 1024;
  const findings = adapters.tally.findingCount + models.tally.findingCount + torch.tally.findingCount + torch.overBound + http.filter((h) => !h.ok).length + adapters.overBound + models.overBound + soakFindings;
  if (values.json) {
    const j = (st: Stats) => ({ cases: st.tally.cases, seconds: st.seconds, slowest_ms: st.maxMs, counts: Object.fromEntries(st.tally.counts), worst_growth: st.worstGrowth, over_bound: st.overBound, findings: st.tally.findings });
    process.stdout.write(`${JSON.stringify({ seed, adapters: j(adapters), models: j(models), torch: j(torch), http, soak: { ...sk, seconds: soakSeconds, rss_before_mib: rssBefore / MiB, rss_after_mib: rssAfter / MiB }, peak_rss_mib: peakRssMiB, findings }, null, 2)}\n`);
  } else {
    const out = [
      `tensorpeft fuzz, seed ${seed}, ${((performance.now() - t0) / 1000).toFixed(0)} s, peak RSS ${peakRssMiB.toFixed(0)} MiB (main thread + worker)`,
      table('adapter files and configs', adapters),
      table('models through rewriteModel', models),
      table('official torch checkpoints (TRAC / LoRTA-port .bin through importOfficial)', torch),
      'hostile HTTP servers (loadAdapter, maxBytes 1 MiB, connect/idle timeouts 1 s, total 3 s per file):',
      ...http.map((h) => `  ${h.ok ? 'ok  ' : 'FAIL'} ${h.behaviour.padEnd(26)} ${h.outcome.kind === 'typed' ? `typed ${h.outcome.name}` : h.outcome.kind} in ${h.ms.toFixed(0)} ms (expected ${h.expected})`),
      `hot-swap soak (tiny BERT, ${sk.specs} adapters + base, distinct references ${sk.distinctRefs}): ${sk.ops} operations in ${soakSeconds.toFixed(0)} s, ${sk.runs} runs, ${sk.correct} equal to their solo output, ${sk.wrong} wrong, ${sk.errors} errors; RSS ${(rssBefore / MiB).toFixed(0)} → ${(rssAfter / MiB).toFixed(0)} MiB${sk.first ? `; first: ${sk.first}` : ''}`,
      `findings: ${findings}`,
    ];
    process.stdout.write(`${out.join('\n')}\n`);
  }
  return findings === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`fuzz: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(2);
  },
);
