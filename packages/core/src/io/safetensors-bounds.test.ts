/**
 * safetensors headers are checked for structure before JSON.parse sees them: nothing in a valid
 * header is nested deeper than 3 (`{name: {shape: [..]}}`), so deeper text is refused without
 * allocating a parse tree for it (issue 15, D7).
 */
import { describe, expect, it, vi } from 'vitest';
import { AdapterFormatError } from '../errors.js';
import { MAX_HEADER_TENSORS, parseSafetensors, readSafetensorsHeader, writeSafetensors } from './safetensors.js';

function fileWithHeader(header: string): Uint8Array {
  const h = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + h.length);
  new DataView(out.buffer).setUint32(0, h.length, true);
  out.set(h, 8);
  return out;
}

function headerError(bytes: Uint8Array): AdapterFormatError {
  try {
    readSafetensorsHeader(bytes, 'x.safetensors');
  } catch (e) {
    if (e instanceof AdapterFormatError) return e;
    throw e;
  }
  throw new Error('header was accepted');
}

describe('safetensors header structure (untrusted)', () => {
  it('D7: a 10 MB header nested 5·10⁶ deep is refused before JSON.parse runs', () => {
    const depth = 5_000_000;
    const bytes = fileWithHeader(`{"a":${'['.repeat(depth)}${']'.repeat(depth)}}`);
    const parse = vi.spyOn(JSON, 'parse');
    let err: AdapterFormatError;
    try {
      err = headerError(bytes);
      expect(parse).not.toHaveBeenCalled();
    } finally {
      parse.mockRestore();
    }
    expect(err.details.field).toBe('header');
    expect(err.details.expected).toBe('nesting depth ≤ 3');
    expect(err.details.file).toBe('x.safetensors');
  });

  it('D7: one level too deep in a tensor entry or in __metadata__ is refused', () => {
    expect(headerError(fileWithHeader('{"t":{"dtype":"F32","shape":[[1]],"data_offsets":[0,4]}}    ')).details.expected).toBe('nesting depth ≤ 3');
    expect(headerError(fileWithHeader('{"__metadata__":{"k":{"x":[1]}}}')).details.expected).toBe('nesting depth ≤ 3');
  });

  it('a header with more tensor entries than the cap is refused before parsing', () => {
    const parts: string[] = [];
    for (let i = 0; i <= MAX_HEADER_TENSORS + 1; i++) parts.push(`"t${i}":0`);
    const err = headerError(fileWithHeader(`{${parts.join(',')}}`));
    expect(err.details.expected).toBe(`≤ ${MAX_HEADER_TENSORS + 1} entries (tensors and __metadata__)`);
  });

  it('brackets inside names and metadata strings do not count as nesting', () => {
    const name = 'a[[[[{{{{"]]]]';
    const bytes = writeSafetensors(new Map([[name, { shape: [2], data: new Float32Array([1, 2]) }]]), { metadata: { note: '[[[[[[[[{{{{' } });
    const p = parseSafetensors(bytes);
    expect([...p.tensors.keys()]).toEqual([name]);
    expect(p.metadata.note).toBe('[[[[[[[[{{{{');
  });
});
