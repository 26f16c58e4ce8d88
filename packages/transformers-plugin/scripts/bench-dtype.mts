/**
 * Issue 12's decode-step overhead rows only (runDtypeBench), without the rest of `pnpm bench` (the
 * machine is shared): q4 and fp16 GPT-2 / LLaMA, unfused then fused branches per configuration
 * (sibling fusion, rewrite-siblings.ts), with the load average.
 *
 *   npx tsx packages/transformers-plugin/scripts/bench-dtype.mts [--size base|tiny] [--arch llama,gpt2] [--dtype q4,fp16] [--out file.json]
 *
 * Writes the rows as JSON (meta: date, CPU, load average); `scripts/perf-table.mts --block dtype`
 * turns that file into the README's decode-step table.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { runDtypeBench } from '../src/bench-dtype.js';

const { values } = parseArgs({ options: { size: { type: 'string', default: 'base' }, arch: { type: 'string', default: 'gpt2,llama' }, dtype: { type: 'string', default: 'q4,fp16' }, out: { type: 'string' } } });
const out = values.out ?? 'bench-results/dtype.json';
const log = (l: string) => process.stderr.write(`  ${l}\n`);
const meta = { date: new Date().toISOString(), cpu: cpus()[0]?.model, cores: cpus().length, node: process.version, loadStart: loadavg() };
const rows = await runDtypeBench({
  sizes: [values.size as 'base'],
  archs: values.arch!.split(',') as Array<'llama'>,
  dtypes: values.dtype!.split(',') as Array<'q4'>,
  fuseSiblings: 'both',
  log,
});
await mkdir(path.dirname(out), { recursive: true });
await writeFile(out, `${JSON.stringify({ meta: { ...meta, loadEnd: loadavg() }, rows }, null, 2)}\n`);
log(`wrote ${rows.length} rows to ${out}`);
process.exit(0);
