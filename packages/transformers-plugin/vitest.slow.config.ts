// Slow checks (`src/**/*.slow.ts`), run by hand, never in CI: the root config's aliases, another include.
import { defineConfig } from 'vitest/config';
import root from '../../vitest.config.js';

export default defineConfig({
  ...root,
  test: { ...root.test, include: ['packages/transformers-plugin/src/**/*.slow.ts'], testTimeout: 600_000, hookTimeout: 300_000 },
});
