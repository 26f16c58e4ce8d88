/**
 * Fuzz target for official method checkpoints (issue 13 + 15): torch.save `.bin` files read by
 * core's restricted unpickler and imported by the method importers. Seeds are official folders
 * written by core's `exportOfficial` (TRAC and the LoRTA PEFT port) for tiny BERT, GPT-2 and Llama
 * shapes. A case mutates the zip bytes, the pickle program inside it (re-zipped, so the mutation
 * reaches the unpickler), one raw storage, or the config; an accepted import must materialize to
 * finite (A′, B′, s).
 */
import {
  JsBackend,
  PickleWriter,
  createAdapter,
  exportOfficial,
  importOfficial,
  materializeAdapter,
  parseSafetensors,
  readTorchStateDict,
  tensorW,
  torchSaveZip,
  writeTorchStateDict,
  type ModelShape,
  type PickleValue,
} from '@tensorpeft/core';
import { makeModel } from '@tensorpeft/model-gen';
import { errorOutcome, type Outcome } from './classify.js';
import { mutateBytes, mutateJson } from './mutate.js';
import type { Rng } from './rng.js';

export interface TorchSeed {
  name: string;
  files: Map<string, Uint8Array>;
  /** The state dict of the `.bin`, to re-pickle with a mutated program. */
  tensors: [string, { shape: number[]; data: Float32Array }][];
  binName: string;
  shape: ModelShape;
}

export function torchSeeds(): TorchSeed[] {
  const seeds: TorchSeed[] = [];
  for (const arch of ['bert', 'gpt2', 'llama'] as const) {
    const shape = makeModel({ arch, size: 'tiny' }).shape;
    for (const method of ['TRAC', 'LORTA'] as const) {
      let files: Map<string, Uint8Array>;
      try {
        // The LoRTA PEFT port's layout is heads on the input side.
        const config = method === 'LORTA' ? { head_side: 'input' } : {};
        files = new Map(exportOfficial(createAdapter({ method, shape, nonzero: true, seed: 2, config })).files);
      } catch {
        continue; // a method whose official code has no layout for this shape (e.g. GPT-2's fused c_attn)
      }
      // The port saves safetensors; its loader reads a torch.save `.bin` too, which is what this target fuzzes.
      const st = [...files.keys()].find((n) => n.endsWith('.safetensors'));
      if (st) {
        const parsed = parseSafetensors(files.get(st)!, st);
        files.delete(st);
        files.set('adapter_model.bin', writeTorchStateDict([...parsed.tensors].map(([k, t]) => [k, { shape: [...t.shape], data: Float32Array.from(t.data) }])));
      }
      const binName = [...files.keys()].find((n) => n.endsWith('.bin'));
      if (!binName) continue;
      const sd = readTorchStateDict(files.get(binName)!);
      const tensors = [...sd].map(([k, t]) => [k, { shape: [...t.shape], data: Float32Array.from(t.data) }] as [string, { shape: number[]; data: Float32Array }]);
      seeds.push({ name: `${method.toLowerCase()}-${arch}`, files, tensors, binName, shape });
    }
  }
  return seeds;
}

/** The pickle program and storages of a state dict, as torch.save lays them out. */
function parts(tensors: TorchSeed['tensors']): { pkl: Uint8Array; storages: { key: string; bytes: Uint8Array }[] } {
  const items: [PickleValue, PickleValue][] = [];
  const storages: { key: string; bytes: Uint8Array }[] = [];
  tensors.forEach(([name, t], i) => {
    items.push([name, tensorW(String(i), t.data.length, t.shape)]);
    storages.push({ key: String(i), bytes: new Uint8Array(t.data.buffer.slice(0)) });
  });
  return { pkl: PickleWriter.pickle({ odict: items, state: { dict: [['_metadata', { odict: [] }]] } }), storages };
}

export interface TorchCase {
  seed: string;
  how: 'zip-bytes' | 'pickle' | 'storage' | 'config';
  files: Map<string, Uint8Array>;
  withShape: boolean;
}

export function torchCase(rng: Rng, seeds: readonly TorchSeed[]): TorchCase {
  const s = rng.pick(seeds);
  const how = rng.pick(['zip-bytes', 'pickle', 'pickle', 'storage', 'config'] as const);
  const files = new Map(s.files);
  if (how === 'zip-bytes') files.set(s.binName, mutateBytes(rng, s.files.get(s.binName)!));
  else if (how === 'pickle' || how === 'storage') {
    const { pkl, storages } = parts(s.tensors);
    if (how === 'pickle') files.set(s.binName, torchSaveZip(mutateBytes(rng, pkl), storages));
    else {
      const k = rng.int(storages.length);
      storages[k] = { key: storages[k]!.key, bytes: mutateBytes(rng, storages[k]!.bytes) };
      files.set(s.binName, torchSaveZip(pkl, storages));
    }
  } else {
    const cfg = JSON.parse(new TextDecoder().decode(s.files.get('adapter_config.json')!));
    files.set('adapter_config.json', new TextEncoder().encode(mutateJson(rng, cfg, ['r', 'lora_alpha', 'tensor_shape', 'tensor_rank_A', 'tensor_rank_B', 'target_modules', 'peft_type'])));
  }
  return { seed: s.name, how, files, withShape: rng.chance(0.7) };
}

const backend = new JsBackend();

export async function runTorchCase(c: TorchCase, seeds: readonly TorchSeed[]): Promise<Outcome> {
  try {
    const shape = c.withShape ? seeds.find((s) => s.name === c.seed)?.shape : undefined;
    const { adapter } = importOfficial({ files: c.files, source: `fuzz/${c.seed}` }, shape ? { shape } : {});
    for (const u of await materializeAdapter(adapter, backend)) {
      if (!Number.isFinite(u.s) || u.A.some((v) => !Number.isFinite(v)) || u.B.some((v) => !Number.isFinite(v))) {
        return { kind: 'nonfinite', message: `accepted official checkpoint materializes non-finite values in ${u.path}` };
      }
    }
    return { kind: 'accepted' };
  } catch (e) {
    return errorOutcome(e);
  }
}
