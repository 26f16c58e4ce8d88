/**
 * Seed corpus: the real HF PEFT adapters in fixtures/peft-real, one generated adapter of every
 * method on tiny BERT, GPT-2 and Llama shapes (ΔW ≠ 0), and the tiny generated models (fp32 and
 * q8) of model-gen.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { adapterToFiles, createAdapter, listMethods, type ModelShape } from '@tensorpeft/core';
import { makeModel } from '@tensorpeft/model-gen';

export interface AdapterSeed {
  name: string;
  config: string;
  safetensors: Uint8Array;
  /** The model shape the adapter was made for (cases alternate between giving it and inferring it). */
  shape?: ModelShape;
}

export interface ModelSeed {
  name: string;
  bytes: Uint8Array;
  targets: string[];
}

const FIXTURES = fileURLToPath(new URL('../../../fixtures/peft-real/', import.meta.url));
const ARCHS = ['bert', 'gpt2', 'llama'] as const;

export function adapterSeeds(opts: { real?: boolean } = {}): AdapterSeed[] {
  const seeds: AdapterSeed[] = [];
  for (const arch of ARCHS) {
    const shape = makeModel({ arch, size: 'tiny' }).shape;
    for (const m of listMethods()) {
      const a = createAdapter({ method: m, shape, nonzero: true, seed: 1, config: m.peftType === 'VERA' ? { r: 8 } : {} });
      const f = adapterToFiles(a);
      seeds.push({ name: `${m.cliName}-${arch}`, config: f.configJson, safetensors: f.safetensors, shape });
    }
  }
  if (opts.real ?? true) {
    for (const name of ['distilbert-lora-emotion', 'gpt2-lora-tigrinya']) {
      seeds.push({
        name,
        config: readFileSync(`${FIXTURES}${name}/adapter_config.json`, 'utf8'),
        safetensors: Uint8Array.from(readFileSync(`${FIXTURES}${name}/adapter_model.safetensors`)),
      });
    }
  }
  return seeds;
}

export function modelSeeds(): ModelSeed[] {
  const seeds: ModelSeed[] = [];
  for (const arch of ['bert', 'gpt2', 'llama', 'distilbert', 'vit'] as const) {
    const m = makeModel({ arch, size: 'tiny' });
    const targets = m.shape.modules.map((x) => x.path);
    for (const file of ['onnx/model.onnx', 'onnx/model_quantized.onnx']) {
      const bytes = m.files.get(file);
      if (bytes) seeds.push({ name: `${arch}:${file}`, bytes: Uint8Array.from(bytes as Uint8Array), targets });
    }
  }
  return seeds;
}
