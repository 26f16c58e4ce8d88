/**
 * REWRITE_VERSION pins the rewrite output: the SHA-256 of the rewrite of two hand-built models
 * (test-utils/pin-models.ts) is recorded with the version in rewrite-pin.json. A change of what the
 * rewrite writes must come with a bump (the rewrite cache keys entries by version), then
 * `npx tsx packages/transformers-plugin/scripts/pin-rewrite.mts` re-pins; the script refuses to
 * re-pin changed output under an unchanged version.
 */
import { readFileSync } from 'node:fs';
import { expect, test } from 'vitest';
import { REWRITE_VERSION } from './rewrite-cache.js';
import { pinHashes, pinModels } from './test-utils/pin-models.js';
import { rewriteSpliced } from './proto-splice.js';
import { createHash } from 'node:crypto';

const pin = JSON.parse(readFileSync(new URL('./rewrite-pin.json', import.meta.url), 'utf8')) as { version: number; hashes: Record<string, string> };

test('the rewrite of the pinned models hashes as pinned for this REWRITE_VERSION', async () => {
  expect(pin.version, 'REWRITE_VERSION changed: re-pin with `npx tsx packages/transformers-plugin/scripts/pin-rewrite.mts`').toBe(REWRITE_VERSION);
  expect(await pinHashes(), 'the rewrite output changed: bump REWRITE_VERSION (rewrite-cache.ts), then re-pin with scripts/pin-rewrite.mts').toEqual(pin.hashes);
});

test('the pin sees a change of the output: one target fewer, or one more head parameter, hashes differently', () => {
  const m = pinModels()[0]!;
  const hash = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
  expect(hash(rewriteSpliced(m.bytes, { targets: m.targets }).bytes)).toBe(pin.hashes[m.name]);
  expect(hash(rewriteSpliced(m.bytes, { targets: m.targets.slice(1) }).bytes)).not.toBe(pin.hashes[m.name]);
  expect(hash(rewriteSpliced(m.bytes, { targets: m.targets, overridableHeads: false }).bytes)).not.toBe(pin.hashes[m.name]);
});
