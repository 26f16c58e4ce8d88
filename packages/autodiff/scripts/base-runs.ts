/**
 * The acceptance run on base-size models: `tensorpeft make-model --size base` for DistilBERT
 * (seq-cls), GPT-2 and LLaMA (causal LM; LLaMA base is SmolLM-135M's shape, 30 layers), then for
 * each of the six methods `tensorpeft train` (a few steps on one small batch, each method's default
 * config), reload of the written adapter folder by `tensorpeft verify` (plugin vs offline merge), and
 * one markdown row per run. Not part of CI: tens of minutes on 2 shared cores.
 *
 *   pnpm --filter @tensorpeft/cli... build
 *   npx tsx packages/autodiff/scripts/base-runs.ts [--size base|tiny] [--archs distilbert,gpt2,llama] [--methods trac,…] [--steps 3] [--out docs/training-base-runs.json]
 *
 * Runs the built CLI (apps/cli/dist/bin.js) as a user would, one process per command.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const BIN = path.join(ROOT, 'apps/cli/dist/bin.js');
const { values } = parseArgs({ options: { archs: { type: 'string' }, methods: { type: 'string' }, steps: { type: 'string' }, out: { type: 'string' }, keep: { type: 'string' }, size: { type: 'string' } } });
/** `tiny` runs the same loop on tiny models (seconds per run; tensor factorizations from the method defaults that fit). */
const size = values.size === 'tiny' ? 'tiny' : 'base';
const archs = (values.archs ?? 'distilbert,gpt2,llama').split(',');
const methods = (values.methods ?? 'trac,lora,vera,loretta,lorta,tenslora').split(',');
const steps = Number(values.steps ?? 3);

/** Method configs whose tensor factorizations fit tiny DistilBERT (hidden 32); tiny GPT-2 (fused c_attn 32 → 96) and LLaMA take the defaults. */
const TINY_CONFIGS: Record<string, Record<string, unknown>> = {
  trac: { r: 4, lora_alpha: 8, tensor_shape: [2, 4, 4], tensor_rank_a: [1, 2, 4], tensor_rank_b: [1, 2, 4] },
  lora: { r: 4, lora_alpha: 8 },
  vera: { r: 8 },
  loretta: { r: 4, lora_alpha: 8, tensor_rank: 2, tensor_shape_a: { '32': [4, 4, 8] }, tensor_shape_b: { '32': [4, 4, 8] } },
};

/** Short texts: the same batch every step, so a few steps show whether the loss falls. */
const TEXTS = ['the film was a great and moving story', 'a dull, slow and boring mess of a film'];

async function cli(args: string[]): Promise<{ json: Record<string, unknown>; seconds: number }> {
  const t0 = performance.now();
  const { stdout } = await run(process.execPath, [BIN, ...args], { maxBuffer: 1 << 26 });
  return { json: JSON.parse(stdout) as Record<string, unknown>, seconds: (performance.now() - t0) / 1000 };
}

const tmp = values.keep ?? (await mkdtemp(path.join(tmpdir(), 'tp-base-runs-')));
const rows: Array<Record<string, unknown>> = [];
try {
  const data = path.join(tmp, 'data.jsonl');
  await writeFile(data, TEXTS.map((t, i) => JSON.stringify({ text: t, label: i })).join('\n'));
  for (const arch of archs) {
    const model = path.join(tmp, `${arch}-${size}`);
    const t0 = performance.now();
    await run(process.execPath, [BIN, 'make-model', '--arch', arch, '--size', size, '--no-quantized', '--out', model], { maxBuffer: 1 << 26 });
    console.error(`${arch}: make-model ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    for (const method of methods) {
      const out = path.join(tmp, `${arch}-${method}`);
      const row: Record<string, unknown> = { arch, method, load: loadavg()[0] };
      try {
        // Seq-cls trains the heads too (modules_to_save); causal LM trains the adapter only.
        // Base DistilBERT's heads (592 k parameters) overshoot at 1e-3 within 3 steps: 2e-4 there.
        const lr = size === 'tiny' ? '0.01' : arch === 'distilbert' ? '0.0002' : '0.005';
        const config = size === 'tiny' && TINY_CONFIGS[method] && arch === 'distilbert' ? ['--config', JSON.stringify(TINY_CONFIGS[method])] : [];
        const tr = await cli(['train', ...config, '--model', model, '--method', method, '--data', data, '--epochs', String(steps), '--batch-size', '2', '--lr', lr, '--max-length', '16', '--out', out, '--json', '--quiet']);
        Object.assign(row, { steps: tr.json['steps'], loss_first: tr.json['loss_first'], loss_last: tr.json['loss_last'], train_seconds: tr.seconds });
        const v = await cli(['verify', '--model', model, '--adapter', out, '--json', '--text', TEXTS[0]!, '--text', TEXTS[1]!]).catch((e: { stdout?: string }) => {
          // verify exits 1 when a tolerance is exceeded; its JSON still says by how much.
          if (e.stdout) return { json: JSON.parse(e.stdout) as Record<string, unknown>, seconds: 0 };
          throw e;
        });
        Object.assign(row, { verify_ok: v.json['ok'], max_abs_diff: v.json['max_abs_diff'], tolerance: v.json['tolerance'], verify_seconds: v.seconds });
      } catch (e) {
        row['error'] = String((e as Error).message).split('\n').slice(0, 3).join(' ');
      }
      rows.push(row);
      console.error(JSON.stringify(row));
      await rm(out, { recursive: true, force: true });
    }
    if (!values.keep) await rm(model, { recursive: true, force: true });
  }
} finally {
  if (!values.keep) await rm(tmp, { recursive: true, force: true });
}
const f = (x: unknown, d: number): string => (typeof x === 'number' ? (Math.abs(x) < 1e-3 && x !== 0 ? x.toExponential(1) : x.toFixed(d)) : '—');
console.log('| model | method | steps | loss first → last | verify max_abs_diff (tolerance) | ok | train s | verify s |');
console.log('|---|---|---:|---:|---:|---|---:|---:|');
for (const r of rows) {
  console.log(
    r['error']
      ? `| ${r['arch']}-${size} | ${r['method']} | error: ${r['error']} | | | | | |`
      : `| ${r['arch']}-${size} | ${r['method']} | ${r['steps']} | ${f(r['loss_first'], 3)} → ${f(r['loss_last'], 3)} | ${f(r['max_abs_diff'], 6)} (${f(r['tolerance'], 6)}) | ${r['verify_ok'] ? 'yes' : 'NO'} | ${f(r['train_seconds'], 0)} | ${f(r['verify_seconds'], 0)} |`,
  );
}
if (values.out) {
  await mkdir(path.dirname(path.resolve(values.out)), { recursive: true });
  await writeFile(path.resolve(values.out), `${JSON.stringify(rows, null, 2)}\n`);
}
