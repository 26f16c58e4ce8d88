import { describe, expect, it } from 'vitest';
import { adapterFromBytes, AdapterFormatError, adapterToFiles, buildShape, ConfigError, createAdapter, TensorPeftError } from '@tensorpeft/core';
import {
  adapterCandidates,
  checkHubId,
  hubFileUrl,
  describeError,
  DTYPES,
  dtypeUnavailable,
  formatProgress,
  onnxFileFor,
  formatBytes,
  formatCount,
  formatMs,
  maxAbsDiff,
  parseManifest,
  pickAdapterFiles,
  PlaygroundFileError,
  resolveAdapterUrl,
  rankLabels,
  sanitizeName,
  shortcutChoice,
  softmax,
  uniqueName,
} from './logic.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('parseManifest', () => {
  const tiny = { id: 'tiny-distilbert', arch: 'distilbert', size: 'tiny', description: 'd', labels: ['a', 'b'], modules: 12, dtypes: { fp32: 1000, q8: 400 } };
  const lora = { name: 'lora', model: 'tiny-distilbert', path: 'adapters/lora/', peft_type: 'LORA', modules: 4, rank: 8, trainable: 10, frozen: 0, stored: 10, bytes: 100 };
  const good = { models: [tiny], adapters: [lora] };
  it('accepts what prepare-assets writes', () => {
    const m = parseManifest(good);
    expect(m.models[0]).toMatchObject({ id: 'tiny-distilbert', labels: ['a', 'b'], dtypes: { fp32: 1000, q8: 400 } });
    expect(m.adapters[0]).toMatchObject({ name: 'lora', model: 'tiny-distilbert', peft_type: 'LORA', bytes: 100, real: false });
    expect(parseManifest({ ...good, adapters: [{ ...lora, real: true, origin: 'HF PEFT' }] }).adapters[0]).toMatchObject({ real: true, origin: 'HF PEFT' });
  });
  it('refuses malformed manifests with a typed error', () => {
    expect(() => parseManifest(null)).toThrow(PlaygroundFileError);
    expect(() => parseManifest({ model: tiny, adapters: [] })).toThrow(/expected \{ models\[\], adapters\[\] \}/);
    expect(() => parseManifest({ models: [], adapters: [] })).toThrow(/no models/);
    expect(() => parseManifest({ ...good, models: [{ ...tiny, dtypes: {} }] })).toThrow(/no ONNX file of a known dtype/);
    expect(() => parseManifest({ ...good, models: [tiny, tiny] })).toThrow(/duplicate model id/);
    expect(() => parseManifest({ ...good, adapters: [{ name: 'x' }] })).toThrow(/adapter 0 needs/);
    expect(() => parseManifest({ ...good, adapters: [lora, lora] })).toThrow(/duplicate adapter name lora/);
    expect(() => parseManifest({ ...good, adapters: [{ ...lora, name: 'base' }] })).toThrow(/bad adapter name/);
    expect(() => parseManifest({ ...good, adapters: [{ ...lora, model: 'other' }] })).toThrow(/unknown model other/);
  });
});

describe('adapterCandidates', () => {
  const m = parseManifest({
    models: [
      { id: 'tiny', labels: [], dtypes: { fp32: 1 } },
      { id: 'base', labels: [], dtypes: { fp32: 1 } },
    ],
    adapters: [
      { name: 'trac', model: 'tiny', path: 'a/', peft_type: 'TRAC' },
      { name: 'real', model: 'base', path: 'b/', peft_type: 'LORA' },
    ],
  });
  it("an embedded model gets its own shipped adapters, then the user's", () => {
    expect(adapterCandidates(m, 'tiny', false, ['mine'])).toEqual(['trac', 'mine']);
    expect(adapterCandidates(m, 'base', false, [])).toEqual(['real']);
  });
  it('a Hub model gets every shipped adapter (the plugin decides what fits), without duplicates', () => {
    expect(adapterCandidates(m, 'org/x', true, ['mine', 'trac'])).toEqual(['trac', 'real', 'mine']);
  });
});

describe('progress and dtypes', () => {
  it('formats download progress with and without a known size', () => {
    expect(formatProgress('onnx/model.onnx', 512 * 1024, 2 * 1024 * 1024)).toBe('onnx/model.onnx 512.0 KiB / 2.00 MiB (25 %)');
    expect(formatProgress('onnx/model.onnx', 2048, 0)).toBe('onnx/model.onnx 2.0 KiB');
    // A server that sends more than its content-length never shows more than 100 %.
    expect(formatProgress('f', 300, 200)).toMatch(/\(100 %\)$/);
  });
  it('maps dtypes to the file names transformers.js loads', () => {
    // transformers.js' DEFAULT_DTYPE_SUFFIX_MAPPING: '' / _quantized / _fp16 / _int8 / _uint8 / _q4 / _q4f16 / _bnb4.
    expect(DTYPES.map(onnxFileFor)).toEqual([
      'onnx/model.onnx',
      'onnx/model_quantized.onnx',
      'onnx/model_fp16.onnx',
      'onnx/model_int8.onnx',
      'onnx/model_uint8.onnx',
      'onnx/model_q4.onnx',
      'onnx/model_q4f16.onnx',
      'onnx/model_bnb4.onnx',
    ]);
  });
  it('keeps the sizes of every known dtype and the method configs from the manifest', () => {
    const m = parseManifest({ models: [{ id: 't', labels: [], dtypes: { fp32: 10, q4: 3, bnb4: 4, q3: 9 }, method_configs: { TRAC: { tensor_shape: { 32: [2, 4, 4] } } } }], adapters: [] });
    expect(m.models[0]!.dtypes).toEqual({ fp32: 10, q4: 3, bnb4: 4 });
    expect(m.models[0]!.methodConfigs).toEqual({ TRAC: { tensor_shape: { 32: [2, 4, 4] } } });
    expect(parseManifest({ models: [{ id: 't', labels: [], dtypes: { fp32: 1 } }], adapters: [] }).models[0]!.methodConfigs).toEqual({});
    expect(() => parseManifest({ models: [{ id: 't', labels: [], dtypes: { fp32: 1 }, method_configs: { TRAC: 3 } }], adapters: [] })).toThrow(/method_configs.TRAC must be an object/);
  });
  it('says why a dtype cannot run on the WebGPU EP, and never on wasm', () => {
    for (const d of DTYPES) expect(dtypeUnavailable(d, 'wasm', undefined)).toBeUndefined();
    const noF16 = { shaderF16: false };
    expect(DTYPES.filter((d) => dtypeUnavailable(d, 'webgpu', noF16) !== undefined)).toEqual(['fp16', 'q4f16']);
    expect(dtypeUnavailable('fp16', 'webgpu', noF16)).toMatch(/shader-f16/);
    expect(DTYPES.filter((d) => dtypeUnavailable(d, 'webgpu', { shaderF16: true }) !== undefined)).toEqual([]);
    expect(dtypeUnavailable('fp32', 'webgpu', undefined)).toMatch(/no WebGPU adapter/);
  });
});

describe('pickAdapterFiles', () => {
  const cfg = { name: 'adapter_config.json', bytes: enc('{"peft_type":"LORA"}') };
  const st = { name: 'adapter_model.safetensors', bytes: new Uint8Array([1]) };
  it('finds the two files by name and names the adapter by peft_type', () => {
    const p = pickAdapterFiles([st, { name: 'README.md', bytes: enc('x') }, cfg]);
    expect(p.config).toBe(cfg.bytes);
    expect(p.safetensors).toBe(st.bytes);
    expect(p.name).toBe('lora');
    expect(p.source).toBe('dropped');
  });
  it('names a dropped folder by the folder', () => {
    const p = pickAdapterFiles([
      { name: 'my emotion/adapter_config.json', bytes: cfg.bytes },
      { name: 'my emotion/adapter_model.safetensors', bytes: st.bytes },
    ]);
    expect(p.name).toBe('my-emotion');
    expect(p.source).toBe('my emotion');
  });
  it('falls back on the only .json / .safetensors', () => {
    const p = pickAdapterFiles([
      { name: 'cfg.json', bytes: enc('not json') },
      { name: 'w.safetensors', bytes: st.bytes },
    ]);
    expect(p.name).toBe('dropped');
  });
  it('says which file is missing or ambiguous', () => {
    expect(() => pickAdapterFiles([])).toThrow(PlaygroundFileError);
    expect(() => pickAdapterFiles([cfg])).toThrow(/adapter_model\.safetensors is missing \(got adapter_config\.json\)/);
    expect(() => pickAdapterFiles([st])).toThrow(/adapter_config\.json is missing/);
    expect(() => pickAdapterFiles([cfg, st, { name: 'b/adapter_config.json', bytes: cfg.bytes }])).toThrow(/more than one adapter_config\.json/);
    expect(() => pickAdapterFiles([cfg, { name: 'a.safetensors', bytes: st.bytes }, { name: 'b.safetensors', bytes: st.bytes }])).toThrow(/more than one \.safetensors/);
  });
  it('gives bytes that core parses back into the adapter', () => {
    const shape = buildShape('bert', { hiddenSize: 16, numLayers: 1, numHeads: 2, numKvHeads: 2, intermediateSize: 32 }, 'tiny');
    const a = createAdapter({ method: 'LORA', shape, nonzero: true, seed: 3 });
    const f = adapterToFiles(a);
    const p = pickAdapterFiles([
      { name: 'adapter_config.json', bytes: enc(f.configJson) },
      { name: 'adapter_model.safetensors', bytes: f.safetensors },
    ]);
    const back = adapterFromBytes({ config: p.config, safetensors: p.safetensors, source: p.source });
    expect(back.config.peft_type).toBe('LORA');
    expect(back.plan.modules.length).toBe(a.plan.modules.length);
  });
});

describe('describeError', () => {
  it('renders core typed errors by class, also when the name was minified away', () => {
    expect(() => adapterFromBytes({ config: '{"peft_type":"LORA"}', safetensors: new Uint8Array(3), source: 'x' })).toThrow(AdapterFormatError);
    try {
      adapterFromBytes({ config: '{"peft_type":"LORA","r":8,"target_modules":["q"]}', safetensors: new Uint8Array(3), source: 'x' });
    } catch (e) {
      expect(describeError(e)).toMatch(/^AdapterFormatError: .*safetensors/);
      (e as Error).name = 'qt';
      expect(describeError(e)).toMatch(/^AdapterFormatError: /);
    }
    expect(describeError(new ConfigError('bad', { field: 'peft_type' }))).toBe('ConfigError: bad (field peft_type)');
    expect(describeError(new PlaygroundFileError('x'))).toBe('PlaygroundFileError: x');
    // Subclasses from other packages (kernels-wgsl's WebGpuDeviceLostError, …) keep their own name.
    class WebGpuDeviceLostError extends TensorPeftError {}
    expect(describeError(new WebGpuDeviceLostError('gone'))).toBe('WebGpuDeviceLostError: gone');
    expect(describeError(new TensorPeftError('plain'))).toBe('TensorPeftError: plain');
    expect(describeError(new TypeError('y'))).toBe('TypeError: y');
    expect(describeError('z')).toBe('Error: z');
  });
});

describe('formatting and outputs', () => {
  it('formats bytes, counts, times', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(2048)).toBe('2.0 KiB');
    expect(formatBytes(3 * 1024 * 1024)).toBe('3.00 MiB');
    expect(formatCount(1234567)).toBe('1,234,567');
    expect(formatMs(0.0123)).toBe('12.3 µs');
    expect(formatMs(5)).toBe('5.00 ms');
    expect(formatMs(2500)).toBe('2.50 s');
    expect(formatMs(undefined)).toBe('—');
  });
  it('softmax is stable and sums to 1', () => {
    const p = softmax([1000, 1000, 999]);
    expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    expect(p[0]).toBeCloseTo(p[1]!, 15);
    expect(softmax([])).toEqual([]);
  });
  it('ranks labels by probability, ties in label order', () => {
    const r = rankLabels([0, 2, 2, -1], ['a', 'b', 'c']);
    expect(r.map((x) => x.label)).toEqual(['b', 'c', 'a', 'LABEL_3']);
    expect(r[0]!.logit).toBe(2);
  });
  it('maxAbsDiff', () => {
    expect(maxAbsDiff([1, 2], [1, 2])).toBe(0);
    expect(maxAbsDiff([1, 2], [1.5, 1])).toBe(1);
    expect(maxAbsDiff([1], [1, 2])).toBe(Infinity);
  });
});

describe('names and shortcuts', () => {
  it('sanitizes and de-duplicates names, never "base"', () => {
    expect(sanitizeName('My Adapter!')).toBe('My-Adapter');
    expect(sanitizeName('base')).toBe('adapter');
    expect(sanitizeName('///')).toBe('adapter');
    expect(uniqueName('lora', ['lora', 'lora-2'])).toBe('lora-3');
    expect(uniqueName('vera', ['lora'])).toBe('vera');
  });
  it('maps 0 to base and 1…9 to adapters', () => {
    expect(shortcutChoice('0', ['a', 'b'])).toBe('base');
    expect(shortcutChoice('2', ['a', 'b'])).toBe('b');
    expect(shortcutChoice('3', ['a', 'b'])).toBeUndefined();
    expect(shortcutChoice('x', ['a'])).toBeUndefined();
  });
});

describe('resolveAdapterUrl', () => {
  const page = 'http://127.0.0.1:5173/app/';
  it('resolves relative folders and file URLs to the folder, names it by its last segment', () => {
    expect(resolveAdapterUrl('generated/adapters/lora', page)).toEqual({ folder: 'http://127.0.0.1:5173/app/generated/adapters/lora/', name: 'lora' });
    expect(resolveAdapterUrl(' https://hf.co/u/my.adapter/adapter_config.json ', page)).toEqual({ folder: 'https://hf.co/u/my.adapter/', name: 'my-adapter' });
    expect(resolveAdapterUrl('/x/base/', page).name).toBe('adapter');
  });
  it('rejects empty and non-http input with PlaygroundFileError', () => {
    expect(() => resolveAdapterUrl('  ', page)).toThrow(PlaygroundFileError);
    expect(() => resolveAdapterUrl('file:///etc/', page)).toThrow(/http\(s\)/);
  });
});

describe('Hub ids', () => {
  it('accepts org/name and name, refuses paths, URLs and traversal', () => {
    expect(checkHubId(' Xenova/distilbert-base-uncased ')).toBe('Xenova/distilbert-base-uncased');
    expect(checkHubId('gpt2')).toBe('gpt2');
    for (const bad of ['', 'a/b/c', 'https://huggingface.co/x', '../x', 'a/..', 'a b', '/x']) expect(() => checkHubId(bad), bad).toThrow(PlaygroundFileError);
  });
  it('builds file URLs like transformers.js', () => {
    expect(hubFileUrl('https://huggingface.co/', '{model}/resolve/{revision}/', 'org/m', 'config.json')).toBe('https://huggingface.co/org/m/resolve/main/config.json');
    expect(hubFileUrl('http://mirror.local', '{model}/{revision}', 'm', 'onnx/model.onnx', 'v 1')).toBe('http://mirror.local/m/v%201/onnx/model.onnx');
  });
});
