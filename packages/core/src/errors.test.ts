/**
 * Error rendering is fed file-controlled values (tensor names, shapes, config values): it must
 * stay one bounded line with no control characters, whatever the value (issue 15, D2 and D15).
 */
import { describe, expect, it } from 'vitest';
import { AdapterFormatError, ConfigError, TensorPeftError, escapeControl, renderValue } from './errors.js';

function deepArray(depth: number): unknown {
  let v: unknown = [1];
  for (let i = 0; i < depth; i++) v = [v];
  return v;
}

describe('rendered error details', () => {
  it('D2: a shape nested 100,000 deep renders without overflowing the stack, as a bounded line', () => {
    let err: unknown;
    try {
      throw new AdapterFormatError('tensor shape must be an array of non-negative integers', { tensor: 't', field: 'shape', found: deepArray(100_000) });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AdapterFormatError);
    const msg = (err as Error).message;
    expect(msg.startsWith('tensor shape must be an array of non-negative integers (tensor t, field shape): found [[[[')).toBe(true);
    expect(msg.length).toBeLessThan(1_000);
  });

  it('renders ordinary values exactly as JSON', () => {
    const v = { b: [1, 2.5, 'x'], a: null, c: { d: true } };
    expect(renderValue(v)).toBe(JSON.stringify(v));
    expect(renderValue([8, 8, 12])).toBe('[8,8,12]');
    expect(renderValue('plain words')).toBe('plain words');
    expect(renderValue(7)).toBe('7');
    expect(new ConfigError('bad', { field: 'r', expected: 'a positive integer', found: -3 }).message).toBe('bad (field r): expected a positive integer, found -3');
  });

  it('bounds wide values and marks cycles', () => {
    const wide = Array.from({ length: 1_000_000 }, (_, i) => i);
    const s = renderValue(wide);
    expect(s.length).toBeLessThan(600);
    expect(s.endsWith('…')).toBe(true);
    const cyc: Record<string, unknown> = { a: 1 };
    cyc.self = cyc;
    expect(renderValue(cyc)).toBe('{"a":1,"self":[Circular]}');
  });

  it('D15: control characters and line breaks from a file are escaped in every part of the message', () => {
    const evil = 'base_model.model.x\n\u001b[31mFAKE ERROR\u001b[0m\r\u0007\u2028\u202e';
    const e = new AdapterFormatError(`tensor ${evil} is odd`, { file: `dir/${evil}`, tensor: evil, field: evil, expected: evil, found: [evil] });
    // eslint-disable-next-line no-control-regex
    expect(e.message).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/);
    expect(e.message).toContain('base_model.model.x\\n\\u001b[31mFAKE ERROR\\u001b[0m\\r\\u0007\\u2028\\u202e');
    // The structured details keep the raw value for programs.
    expect(e.details.tensor).toBe(evil);
    // Re-wrapping with more context does not double-escape.
    expect(e.withDetails({ file: 'x' }).message).toContain('tensor base_model.model.x\\n\\u001b[31m');
    expect(e).toBeInstanceOf(TensorPeftError);
  });

  it('escapeControl leaves printable text (including non-ASCII) alone', () => {
    expect(escapeControl('ΔW = s · B′ A′ᵀ — ok')).toBe('ΔW = s · B′ A′ᵀ — ok');
    expect(escapeControl('a\tb')).toBe('a\\tb');
  });
});
