import { DatasetError } from '@tensorpeft/autodiff';
import { ConfigError, listMethods } from '@tensorpeft/core';
import { describe, expect, it } from 'vitest';
import { BUNDLED_LABELS, bundledDataset, bundledJsonl } from './dataset.js';
import { describeError } from './logic.js';
import type { OrtLike, OrtSessionLike } from '@tensorpeft/autodiff';
import { checkLabels, DEFAULT_METHOD, detectFormat, formatTrainProgress, lossPoints, methodChoices, parseTrainingData, parseTrainSettings, trainingFileFor, yieldingOrt } from './train-logic.js';

const LABELS = ['sadness', 'joy', 'love', 'anger', 'fear', 'surprise'];

describe('training data', () => {
  it('detects JSONL and CSV', () => {
    expect(detectFormat('\n  {"text":"a","label":1}\n')).toBe('jsonl');
    expect(detectFormat('text,label\na,1')).toBe('csv');
  });
  it('reads JSONL and CSV rows (names and indices as labels)', () => {
    expect(parseTrainingData('{"text":"i am glad","label":"joy"}\n\n{"text":"so sad","label":0}\n', 'auto', 'pasted')).toEqual([
      { text: 'i am glad', label: 'joy' },
      { text: 'so sad', label: 0 },
    ]);
    expect(parseTrainingData('text,label\n"hi, you",love\nugh,3\n', 'auto', 'pasted')).toEqual([
      { text: 'hi, you', label: 'love' },
      { text: 'ugh', label: 3 },
    ]);
  });
  it('reports a bad line with its number, and an empty dataset, as DatasetError', () => {
    const bad = (): unknown => parseTrainingData('{"text":"a","label":1}\n{"text": oops}\n', 'jsonl', 'pasted data');
    expect(bad).toThrow(DatasetError);
    expect(bad).toThrow(/line 2/);
    expect(() => parseTrainingData('text,label\na,1,2\n', 'csv', 'x.csv')).toThrow(/wrong number of fields \(file "?x\.csv"?, field "?line 2"?\)/);
    expect(() => parseTrainingData('  \n', 'auto', 'pasted data')).toThrow(DatasetError);
    expect(() => parseTrainingData('text,label\n', 'csv', 'pasted data')).toThrow(/dataset is empty/);
    // What the panel shows: the typed error's name and message.
    try {
      parseTrainingData('', 'auto', 'pasted data');
    } catch (e) {
      expect(describeError(e)).toMatch(/^DatasetError: dataset is empty/);
    }
  });
  it('resolves labels against the model label set by name or index', () => {
    const ex = checkLabels([{ text: 'a', label: 'fear' }, { text: 'b', label: 5 }, { text: 'c', label: '2' }], LABELS, 'pasted');
    expect(ex.map((e) => e.label)).toEqual([4, 5, 2]);
    expect(ex[0]).toEqual({ text: 'a', label: 4 });
  });
  it('refuses labels outside the label set, naming the example and the set', () => {
    const out = (): unknown => checkLabels([{ text: 'a', label: 'joy' }, { text: 'bored now', label: 'boredom' }], LABELS, 'pasted data');
    expect(out).toThrow(DatasetError);
    expect(out).toThrow(/label outside the model's label set.*example 2 \(\\?"bored now\\?"\).*sadness \| joy/);
    expect(() => checkLabels([{ text: 'a', label: 6 }], LABELS, 'p')).toThrow(/found 6/);
    expect(() => checkLabels([{ text: 'a', label: -1 }], LABELS, 'p')).toThrow(DatasetError);
    expect(() => checkLabels([{ text: 'a' }], LABELS, 'p')).toThrow(/no label/);
    expect(() => checkLabels([], LABELS, 'p')).toThrow(/dataset is empty/);
  });
});

describe('bundled dataset', () => {
  it('has 288 rows, 48 per label, every label one of the embedded models', () => {
    const d = bundledDataset();
    expect(d.length).toBe(288);
    expect(BUNDLED_LABELS).toEqual(LABELS);
    for (const l of LABELS) expect(d.filter((r) => r.label === l).length).toBe(48);
    expect(new Set(d.map((r) => r.text)).size).toBe(288);
    // Neighbouring rows have different labels (a batch of 6 sees each label once).
    for (let i = 0; i < 6; i++) expect(new Set(d.slice(i * 6, i * 6 + 6).map((r) => r.label)).size).toBe(6);
  });
  it('round-trips through the panel parser and the label check', () => {
    const ex = checkLabels(parseTrainingData(bundledJsonl(12), 'auto', 'bundled'), LABELS, 'bundled');
    expect(ex.length).toBe(12);
    expect(ex.slice(0, 6).map((e) => e.label)).toEqual([0, 1, 2, 3, 4, 5]);
  });
});

describe('methods and settings', () => {
  it("offers every method of core's registry, TRAC the default", () => {
    expect(methodChoices().map((m) => m.value)).toEqual(listMethods().map((m) => m.peftType));
    expect(methodChoices().length).toBe(6);
    expect(methodChoices().map((m) => m.value)).toContain(DEFAULT_METHOD);
  });
  const raw = { method: 'TRAC', config: '{"r": 4}', epochs: '2', batchSize: '8', learningRate: '0.01', seed: '3' };
  it('parses the form', () => {
    expect(parseTrainSettings(raw)).toEqual({ method: 'TRAC', config: { r: 4 }, epochs: 2, batchSize: 8, learningRate: 0.01, seed: 3 });
    expect(parseTrainSettings({ ...raw, config: ' ' }).config).toEqual({});
  });
  it('refuses bad values with a ConfigError naming the field', () => {
    expect(() => parseTrainSettings({ ...raw, epochs: '0' })).toThrow(ConfigError);
    expect(() => parseTrainSettings({ ...raw, epochs: '1.5' })).toThrow(/epochs/);
    expect(() => parseTrainSettings({ ...raw, batchSize: '' })).toThrow(/batch size/);
    expect(() => parseTrainSettings({ ...raw, learningRate: 'fast' })).toThrow(/learning rate/);
    expect(() => parseTrainSettings({ ...raw, learningRate: '0' })).toThrow(/learning rate/);
    expect(() => parseTrainSettings({ ...raw, method: 'NOPE' })).toThrow(/unknown method.*found "?NOPE"?/);
    expect(() => parseTrainSettings({ ...raw, config: '{' })).toThrow(/not JSON/);
    expect(() => parseTrainSettings({ ...raw, config: '[1]' })).toThrow(/JSON object/);
  });
  it('trains on the fp32 graph except on q8', () => {
    expect(trainingFileFor('fp32')).toBe('onnx/model.onnx');
    expect(trainingFileFor('q4')).toBe('onnx/model.onnx');
    expect(trainingFileFor('fp16')).toBe('onnx/model.onnx');
    expect(trainingFileFor('q8')).toBe('onnx/model_quantized.onnx');
  });
});

describe('loss plot and progress', () => {
  it('numbers steps from 1 and leaves out non-finite losses', () => {
    expect(lossPoints([2, Number.NaN, 1.5])).toEqual([
      { step: 1, loss: 2 },
      { step: 3, loss: 1.5 },
    ]);
  });
  it('formats progress with an ETA', () => {
    expect(formatTrainProgress(3, 12, 1.79184, 2.1)).toBe('step 3 / 12 · loss 1.7918 · 2.1 s · ETA 6.3 s');
    expect(formatTrainProgress(0, 12, undefined, 0)).toBe('step 0 / 12 · 0.0 s');
    expect(formatTrainProgress(12, 12, 0.5, 8)).toBe('step 12 / 12 · loss 0.5000 · 8.0 s');
  });
});

describe('yieldingOrt', () => {
  it('gives the event loop a task turn before each run, and passes runs and releases through', async () => {
    const events: string[] = [];
    let released = 0;
    const session: OrtSessionLike = {
      inputNames: ['x'],
      outputNames: ['y'],
      run: async (feeds) => {
        events.push('run');
        return { y: feeds['x']! };
      },
      release: async () => {
        released++;
      },
    };
    const fake = { Tensor: class {}, InferenceSession: { create: async () => session } } as unknown as OrtLike;
    const s = await yieldingOrt(fake).InferenceSession.create(new Uint8Array(), {});
    expect([s.inputNames, s.outputNames]).toEqual([['x'], ['y']]);
    setTimeout(() => events.push('timer'), 0);
    const feed = { data: new Float32Array([1]), dims: [1], type: 'float32' } as never;
    const out = await s.run({ x: feed });
    expect(out['y']).toBe(feed);
    // A timer queued before run() fired before the session ran: the page got its turn.
    expect(events).toEqual(['timer', 'run']);
    await s.release!();
    expect(released).toBe(1);
    expect(yieldingOrt(fake).Tensor).toBe(fake.Tensor);
  });
});
