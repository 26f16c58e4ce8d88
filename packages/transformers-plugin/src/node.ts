/**
 * @tensorpeft/transformers-plugin/node — Node-only helpers (they read files with node:fs): the
 * numerical check against an offline merge and the benchmarks. Everything browser-safe is in the
 * main entry, re-exported here too for convenience.
 */
export * from './index.js';
export { verify, DEFAULT_TEXTS, type VerifyOptions, type VerifyResult } from './verify.js';
export { toleranceFor, isVerifyDtype, VERIFY_DTYPES, type VerifyDtype } from './tolerance.js';
export { runPluginBench, type PluginBenchOptions, type PluginBenchRow } from './bench.js';
export { runStepBench, type StepBenchOptions } from './bench-step.js';
