import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// Tests import workspace packages from source so that `vitest` never runs against a stale build.
export default defineConfig({
  resolve: {
    alias: {
      '@tensorpeft/core': fileURLToPath(new URL('./packages/core/src/index.ts', import.meta.url)),
    },
  },
  test: {
    include: ['packages/*/src/**/*.test.ts', 'apps/*/src/**/*.test.ts'],
    testTimeout: 60_000,
    reporters: ['default', './tooling/vitest-summary.ts'],
  },
});
