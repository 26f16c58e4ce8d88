/**
 * Re-pin the rewrite output (src/rewrite-pin.json) after a deliberate change of what the rewrite
 * writes: `npx tsx packages/transformers-plugin/scripts/pin-rewrite.mts`. Refuses while
 * REWRITE_VERSION still equals the pinned version and the output changed, so the rewrite cache
 * never serves entries written by an older rewrite under the same key (rewrite-pin.test.ts checks
 * the same pin in CI).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { REWRITE_VERSION } from '../src/rewrite-cache.js';
import { pinHashes } from '../src/test-utils/pin-models.js';

const file = new URL('../src/rewrite-pin.json', import.meta.url);
const pinned = JSON.parse(await readFile(file, 'utf8').catch(() => '{}')) as { version?: number; hashes?: Record<string, string> };
const now = await pinHashes();
const changed = JSON.stringify(now) !== JSON.stringify(pinned.hashes ?? {});
if (changed && pinned.version === REWRITE_VERSION) {
  console.error(`The rewrite output changed but REWRITE_VERSION is still ${REWRITE_VERSION}: bump it in src/rewrite-cache.ts, then run this again.`);
  process.exit(1);
}
await writeFile(file, `${JSON.stringify({ version: REWRITE_VERSION, hashes: now }, null, 2)}\n`);
console.log(changed ? `pinned REWRITE_VERSION ${REWRITE_VERSION}: ${JSON.stringify(now)}` : 'unchanged');
