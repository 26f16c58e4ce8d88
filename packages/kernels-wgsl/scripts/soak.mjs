// One-off measurements for the README (run after `pnpm build`):
//   node --expose-gc scripts/soak.mjs [materializations=10000] [nobench]
// 1. leak check: N whole-adapter materializations (TRAC, tiny BERT: GPU-resident + release, and
//    read-back), reporting the pool's buffer count / bytes and the process RSS along the way;
// 2. the selftest (rounds 12) summary;
// 3. `bench kernels --quick` rows for webgpu and wasm (SwiftShader: correctness only).
import { existsSync } from 'node:fs';
import { buildShape, createAdapter, getMethod } from '@tensorpeft/core';
import { createWasmBackend, runKernelBench, runSelftest } from '@tensorpeft/kernels-wasm';
import { SWIFTSHADER_ICD, WebGpuBackend } from '../dist/index.js';

if (!process.env.VK_ICD_FILENAMES && existsSync(SWIFTSHADER_ICD)) process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
const N = Number(process.argv[2] ?? 10000);
const gpu = await WebGpuBackend.create();
console.log(`adapter: ${gpu.adapterDescription} (software: ${gpu.software})`);
const tiny = buildShape('bert', { hiddenSize: 18, numLayers: 2, numHeads: 3, numKvHeads: 3, intermediateSize: 30 }, 'tiny-bert');
const a = createAdapter({ method: getMethod('trac'), config: { r: 3, lora_alpha: 6, tensor_shape: [2, 3, 3], tensor_rank_a: [1, 3, 2], tensor_rank_b: [1, 2, 5] }, shape: tiny, seed: 1, nonzero: true });
const jobs = a.method.jobs(a.config, a.plan, a.params);
const t0 = performance.now();
for (let i = 1; i <= N; i++) {
  if (i % 2) (await gpu.materializeToGpu(jobs, { foldScale: true, transposeB: true })).forEach((u) => u.release());
  else await gpu.materialize(jobs);
  if (i === 10 || i % (N / 10) === 0) {
    const s = gpu.poolStats();
    globalThis.gc?.(); // with --expose-gc: count what is still reachable, not what GC has not run on yet
    const mem = process.memoryUsage();
    const mib = (b) => (b / 2 ** 20).toFixed(1);
    console.log(`after ${i}: pool created ${s.created}, live ${s.live} (${s.liveBytes} B), idle ${s.idle}; rss ${mib(mem.rss)} MiB, JS heap ${mib(mem.heapUsed)} MiB; ${((performance.now() - t0) / i).toFixed(2)} ms/materialization`);
  }
}
const st = await runSelftest(gpu, { rounds: 12, seed: 1 });
console.log(`selftest: ${st.passed} passed, ${st.failed} failed, max_rel_err ${st.max_rel_err.toExponential(2)}, max_err_over_bound ${st.max_err_over_bound.toFixed(3)}`);
if (process.argv[3] !== 'nobench') {
  const wasm = await createWasmBackend();
  const rows = await runKernelBench([gpu, wasm], { quick: true, only: ['merge', 'apply'] });
  for (const r of rows) console.log(`${r.kernel} ${r.shape} ${r.backend}: ${r.ms} ms, ${r.gflops} GFLOP/s`);
}
gpu.destroy();
