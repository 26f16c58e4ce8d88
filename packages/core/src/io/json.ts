/** JSON helpers for adapter_config.json. */
import { ConfigError } from '../errors.js';

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) out[k] = sortKeys((v as Record<string, unknown>)[k]);
    return out;
  }
  return v;
}

/**
 * `JSON.stringify` with object keys sorted recursively and 2-space indent: the layout of PEFT's
 * `json.dumps(config, indent=2, sort_keys=True)` (non-ASCII is kept as UTF-8 rather than escaped).
 */
export function stableStringify(value: unknown, indent = 2): string {
  return JSON.stringify(sortKeys(value), null, indent);
}

/** Decode and parse a JSON document, throwing ConfigError naming the file and the parse error. */
export function parseJsonFile(input: string | Uint8Array, file: string): unknown {
  let text: string;
  if (typeof input === 'string') text = input;
  else {
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(input);
    } catch {
      throw new ConfigError('file is not valid UTF-8', { file, expected: 'UTF-8 JSON', found: 'invalid byte sequence' });
    }
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`malformed JSON: ${(e as Error).message}`, { file });
  }
}
