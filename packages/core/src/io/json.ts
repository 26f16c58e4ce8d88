/** JSON helpers for adapter_config.json. */
import { ConfigError } from '../errors.js';
import { scanJson, valueDepthExceeds } from './json-scan.js';

/**
 * Deepest nesting accepted in a config (adapter_config.json, --config JSON). PEFT configs are at
 * most 3 deep (`{"rank_pattern": {"<module>": 8}}`); the bound leaves room for tool-specific extra
 * fields while keeping every recursive consumer (JSON.stringify, zod) far from the stack limit.
 */
export const MAX_CONFIG_DEPTH = 64;

function tooDeep(file: string | undefined, orCycle = false): ConfigError {
  return new ConfigError('config is nested too deeply', {
    file,
    expected: `nesting depth ≤ ${MAX_CONFIG_DEPTH}`,
    found: `nesting deeper than ${MAX_CONFIG_DEPTH}${orCycle ? ' or a cycle' : ''}`,
  });
}

/** Throw ConfigError when an already-parsed config value is nested deeper than MAX_CONFIG_DEPTH or has a cycle. */
export function checkConfigDepth(value: unknown, file?: string): void {
  if (valueDepthExceeds(value, MAX_CONFIG_DEPTH)) throw tooDeep(file, true);
}

/** Copy of `v` with object keys sorted, built with an explicit stack (no recursion; `v` has no cycles). */
function sortKeys(v: unknown): unknown {
  if (v === null || typeof v !== 'object') return v;
  const copy = (x: object): Record<string, unknown> | unknown[] => (Array.isArray(x) ? new Array<unknown>(x.length) : {});
  const root = copy(v);
  const stack: [object, Record<string, unknown> | unknown[]][] = [[v, root]];
  while (stack.length > 0) {
    const [src, dst] = stack.pop()!;
    const keys = Array.isArray(src) ? src.map((_, i) => i) : Object.keys(src).sort();
    for (const k of keys) {
      const child = (src as Record<string | number, unknown>)[k];
      if (child !== null && typeof child === 'object') {
        const c = copy(child);
        (dst as Record<string | number, unknown>)[k] = c;
        stack.push([child, c]);
      } else (dst as Record<string | number, unknown>)[k] = child;
    }
  }
  return root;
}

/**
 * `JSON.stringify` with object keys sorted recursively and 2-space indent: the layout of PEFT's
 * `json.dumps(config, indent=2, sort_keys=True)` (non-ASCII is kept as UTF-8 rather than escaped).
 * A value nested deeper than MAX_CONFIG_DEPTH, or with a cycle, is a ConfigError.
 */
export function stableStringify(value: unknown, indent = 2): string {
  checkConfigDepth(value);
  try {
    return JSON.stringify(sortKeys(value), null, indent);
  } catch (e) {
    // A BigInt or a throwing toJSON: the value is not JSON.
    throw new ConfigError(`config is not JSON-serializable: ${(e as Error).message}`, { expected: 'a JSON value' });
  }
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
  // Structure first: a deeply nested document is refused before JSON.parse builds it.
  const scan = scanJson(text, { maxDepth: MAX_CONFIG_DEPTH });
  if (!scan.ok) throw tooDeep(file);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`malformed JSON: ${(e as Error).message}`, { file });
  }
}
