/**
 * adapter_config.json is untrusted: extra fields are preserved (LoRA, VeRA passthrough), so their
 * nesting must be bounded when the file is read, or saving the adapter later overflows the stack
 * (issue 15, D3).
 */
import { describe, expect, it, vi } from 'vitest';
import { ConfigError } from '../errors.js';
import '../methods/all.js';
import { presetShape } from '../model/presets.js';
import { adapterFromBytes, adapterToFiles, createAdapter, parseAdapterConfig } from './adapter.js';
import { MAX_CONFIG_DEPTH, parseJsonFile, stableStringify } from './json.js';

const deepText = (depth: number) => `${'['.repeat(depth)}1${']'.repeat(depth)}`;

function deepValue(depth: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = { k: v };
  return v;
}

describe('adapter_config.json nesting', () => {
  it('D3: a LoRA config whose extra field is nested 100,000 deep is a ConfigError when read, before JSON.parse', () => {
    const text = `{"peft_type":"LORA","r":2,"target_modules":["query"],"extra":${deepText(100_000)}}`;
    const parse = vi.spyOn(JSON, 'parse');
    try {
      expect(() => parseAdapterConfig(text, 'dir/adapter_config.json')).toThrow(ConfigError);
      expect(parse).not.toHaveBeenCalled();
    } finally {
      parse.mockRestore();
    }
    let err: unknown;
    try {
      parseAdapterConfig(text, 'dir/adapter_config.json');
    } catch (e) {
      err = e;
    }
    expect((err as ConfigError).details.file).toBe('dir/adapter_config.json');
    expect((err as ConfigError).details.found).toBe(`nesting deeper than ${MAX_CONFIG_DEPTH}`);
  });

  it('D3: a config object handed over already parsed gets the same check', () => {
    expect(() => parseAdapterConfig({ peft_type: 'VERA', r: 4, target_modules: ['query'], extra: deepValue(100_000) })).toThrow(ConfigError);
  });

  it('D3: saving an adapter whose config was made deep in memory is a ConfigError, not a RangeError', () => {
    const a = createAdapter({ method: 'lora', config: { r: 2, target_modules: ['query'] }, shape: presetShape('bert-base') });
    (a.config as Record<string, unknown>).extra = deepValue(100_000);
    expect(() => adapterToFiles(a)).toThrow(ConfigError);
    const cyc: Record<string, unknown> = {};
    cyc.self = cyc;
    expect(() => stableStringify(cyc)).toThrow(ConfigError);
  });

  it('keeps configs of ordinary depth, and round-trips their extra fields sorted', () => {
    const extra = { z: [1, { y: [2, 3] }], a: deepValue(MAX_CONFIG_DEPTH - 3) };
    const a = createAdapter({ method: 'lora', config: { r: 2, target_modules: ['query'], extra }, shape: presetShape('bert-base') });
    const files = adapterToFiles(a);
    expect(files.configJson.indexOf('"a"')).toBeLessThan(files.configJson.indexOf('"z"'));
    const back = adapterFromBytes({ config: files.configJson, safetensors: files.safetensors });
    expect(back.config.extra).toEqual(extra);
    expect(parseJsonFile('{"a":[{"b":1}]}', 'f')).toEqual({ a: [{ b: 1 }] });
  });
});
