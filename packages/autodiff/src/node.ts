/**
 * @tensorpeft/autodiff/node — Node-only parts (they read /proc and use node:os): the training
 * benchmark rows. Everything browser-safe is in the main entry, re-exported here too.
 */
export * from './index.js';
export { runTrainBench, type TrainBenchOptions, type TrainBenchRow } from './bench-train.js';
