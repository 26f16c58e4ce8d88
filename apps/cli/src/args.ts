/** Argument helpers shared by the commands (parsing is node:util's parseArgs). */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError, ModelShapeError, presetNames, presetShape, PRESETS, shapeFromHfConfig, type ModelShape } from '@tensorpeft/core';

/** Thrown for bad command-line usage; rendered without a stack trace. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** `--model`: a preset name, a HF config.json file, or a model folder holding config.json. */
export async function resolveModel(spec: string | undefined): Promise<ModelShape> {
  if (!spec) throw new UsageError(`--model is required: a preset (${presetNames().join(', ')}), a config.json, or a model folder`);
  if (Object.hasOwn(PRESETS, spec)) return presetShape(spec);
  let file = spec;
  let info;
  try {
    info = await stat(spec);
  } catch {
    throw new ModelShapeError('model is neither a preset nor an existing path', {
      field: '--model',
      expected: `one of ${presetNames().join(', ')}, a config.json, or a model folder`,
      found: spec,
    });
  }
  if (info.isDirectory()) file = path.join(spec, 'config.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new ModelShapeError('model folder has no config.json', { file, expected: 'a HF config.json', found: 'nothing' });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ModelShapeError(`config.json is not valid JSON: ${(e as Error).message}`, { file });
  }
  return shapeFromHfConfig(json, file);
}

/** `--config '<json>'` (or `@file.json`): the adapter_config.json fields. */
export async function parseConfigArg(raw: string | undefined): Promise<Record<string, unknown>> {
  if (raw === undefined) return {};
  let text = raw;
  let source = '--config';
  if (raw.startsWith('@')) {
    source = raw.slice(1);
    try {
      text = await readFile(source, 'utf8');
    } catch (e) {
      throw new ConfigError(`--config file cannot be read (${(e as { code?: string }).code ?? (e as Error).message})`, { file: source, expected: 'a JSON file with the adapter_config.json fields' });
    }
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`--config is not valid JSON: ${(e as Error).message}`, { file: source });
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    throw new ConfigError('--config must be a JSON object', { file: source, expected: 'an object', found: Array.isArray(v) ? 'an array' : typeof v });
  }
  return v as Record<string, unknown>;
}

export function parseIntArg(v: string | undefined, name: string, def: number): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new UsageError(`${name} must be an integer in [0, 2^32), got ${v}`);
  return n;
}

export function parseDtype(v: string | undefined): 'fp32' | 'fp16' | 'bf16' {
  if (v === undefined) return 'fp32';
  if (v === 'fp32' || v === 'fp16' || v === 'bf16') return v;
  throw new UsageError(`--dtype must be fp32, fp16 or bf16, got ${v}`);
}
