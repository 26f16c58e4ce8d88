import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// Tests import workspace packages from source so that `vitest` never runs against a stale build.
export default defineConfig({
  resolve: {
    alias: {
      '@tensorpeft/core': fileURLToPath(new URL('./packages/core/src/index.ts', import.meta.url)),
      '@tensorpeft/autodiff/node': fileURLToPath(new URL('./packages/autodiff/src/node.ts', import.meta.url)),
      '@tensorpeft/autodiff': fileURLToPath(new URL('./packages/autodiff/src/index.ts', import.meta.url)),
      '@tensorpeft/model-gen': fileURLToPath(new URL('./packages/model-gen/src/index.ts', import.meta.url)),
      '@tensorpeft/transformers-plugin/node': fileURLToPath(new URL('./packages/transformers-plugin/src/node.ts', import.meta.url)),
      '@tensorpeft/transformers-plugin': fileURLToPath(new URL('./packages/transformers-plugin/src/index.ts', import.meta.url)),
      '@tensorpeft/kernels-wgsl/register': fileURLToPath(new URL('./packages/kernels-wgsl/src/register.ts', import.meta.url)),
      '@tensorpeft/kernels-wgsl': fileURLToPath(new URL('./packages/kernels-wgsl/src/index.ts', import.meta.url)),
      // More specific first: the alias plugin takes the first key that is the import or a prefix of it.
      '@tensorpeft/kernels-wasm/register': fileURLToPath(new URL('./packages/kernels-wasm/src/register.ts', import.meta.url)),
      '@tensorpeft/kernels-wasm': fileURLToPath(new URL('./packages/kernels-wasm/src/index.ts', import.meta.url)),
      '@tensorpeft/browser-harness/page': fileURLToPath(new URL('./tooling/browser-harness/src/page.ts', import.meta.url)),
      '@tensorpeft/browser-harness': fileURLToPath(new URL('./tooling/browser-harness/src/index.ts', import.meta.url)),
    },
  },
  test: {
    include: ['packages/*/src/**/*.test.ts', 'apps/*/src/**/*.test.ts', 'tooling/*/src/**/*.test.ts'],
    testTimeout: 60_000,
    reporters: ['default', './tooling/vitest-summary.ts'],
  },
});
