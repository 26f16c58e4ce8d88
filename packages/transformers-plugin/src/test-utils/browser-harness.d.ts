// The part of tooling/browser-harness that webgpu.test.ts uses: that package is not a dependency of
// this one (vitest resolves it through the root config's alias); declared here for `typecheck` only.
declare module '@tensorpeft/browser-harness' {
  import type { Page } from 'playwright-core';
  export type ServedFile = [string, Uint8Array | string];
  export function bundleEntry(entry: string, root: string): Promise<Uint8Array>;
  export function needChromium(): void;
  export function serve(lookup: (pathname: string) => ServedFile | undefined, headers?: Record<string, string>): Promise<{ server: import('node:http').Server; origin: string }>;
  export interface BrowserTest {
    origin: string;
    page: Page;
    pageErrors: string[];
  }
  export function useBrowserTest(opts: {
    site: () => Promise<{ lookup: (pathname: string) => ServedFile | undefined; headers?: Record<string, string> }>;
    launch?: { extraArgs?: string[] };
    pageGlobal?: string;
    timeout: number;
  }): BrowserTest;
}
