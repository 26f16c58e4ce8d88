/**
 * Mutators: byte-level (any file) and structure-aware (safetensors headers, adapter configs, ONNX
 * graphs). Each takes a seeded Rng, so a failing case is reproduced by its seed and index.
 */
import type { Rng } from './rng.js';

/** Values that have broken parsers before: bounds, non-finite spellings, types, control text. */
export const INTERESTING_JSON: readonly string[] = [
  '0', '-1', '1', '2', '7', '255', '65536', '4294967296', '9007199254740993', '1e30', '1e400', '-1e400', '1e-400', '0.5', '-0.0',
  'null', 'true', 'false', '""', '"x"', '[]', '{}', '[1]', '[0]', '[-1]', '[1.5]', '[1e400]', '[[1]]', '{"a":1}',
  '"(.*)*X"', '"(a|aa)+$"', '"(?=q).*"', '"\\u001b[31mred\\n"', '"all-linear"', '"query"', '["query"]', '["nope"]', '[""]',
  `"${'a'.repeat(5000)}"`, `${'['.repeat(2000)}${']'.repeat(2000)}`, `"${'('.repeat(100)}"`,
];

const INTERESTING_BYTES = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x22, 0x5b, 0x5d, 0x7b, 0x7d, 0x2c, 0x3a, 0x5c, 0x0a, 0x1b, 0x30, 0x39, 0x65];

/** 1–4 random byte edits: flips, interesting bytes, inserts, deletes, duplicates, truncation. */
export function mutateBytes(rng: Rng, input: Uint8Array): Uint8Array {
  // A copy (Buffer#slice would be a view: mutating it would change the seed).
  let b: Uint8Array = Uint8Array.from(input);
  const ops = 1 + rng.int(4);
  for (let k = 0; k < ops; k++) {
    const n = b.length;
    const at = n === 0 ? 0 : rng.int(n);
    switch (rng.int(7)) {
      case 0:
        if (n) b[at] = b[at]! ^ (1 << rng.int(8));
        break;
      case 1:
        if (n) b[at] = rng.pick(INTERESTING_BYTES);
        break;
      case 2: {
        const ins = Uint8Array.from({ length: 1 + rng.int(16) }, () => (rng.chance(0.5) ? rng.pick(INTERESTING_BYTES) : rng.int(256)));
        b = concat(b.subarray(0, at), ins, b.subarray(at));
        break;
      }
      case 3:
        b = concat(b.subarray(0, at), b.subarray(Math.min(n, at + 1 + rng.int(64))));
        break;
      case 4: {
        const len = Math.min(n - at, 1 + rng.int(256));
        b = concat(b.subarray(0, at + len), b.subarray(at, at + len), b.subarray(at + len));
        break;
      }
      case 5:
        b = Uint8Array.from(b.subarray(0, at));
        break;
      default:
        // Bias toward the first bytes, where lengths and headers live.
        if (n) {
          const i = rng.int(Math.min(n, 64));
          b[i] = rng.pick(INTERESTING_BYTES);
        }
    }
  }
  return b;
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Every (parent, key) slot of a JSON value, iteratively. */
function slots(root: unknown): { parent: Record<string, unknown> | unknown[]; key: string | number }[] {
  const out: { parent: Record<string, unknown> | unknown[]; key: string | number }[] = [];
  const stack: unknown[] = [root];
  while (stack.length) {
    const v = stack.pop();
    if (Array.isArray(v)) v.forEach((x, i) => (out.push({ parent: v, key: i }), stack.push(x)));
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) out.push({ parent: v as Record<string, unknown>, key: k }), stack.push(x);
  }
  return out;
}

const SENTINEL = '\u0000FUZZ\u0000';

/**
 * Structural JSON mutation: replace 1–3 values (anywhere in the tree) by interesting JSON, delete
 * or add keys, rename keys; returns text (so that `1e400` and deep nesting survive).
 */
export function mutateJson(rng: Rng, value: unknown, extraKeys: readonly string[] = []): string {
  const root = structuredClone(value);
  const inserts: string[] = [];
  const ops = 1 + rng.int(3);
  for (let k = 0; k < ops; k++) {
    const all = slots(root);
    const op = rng.int(5);
    if (op <= 1 && all.length) {
      const s = rng.pick(all);
      inserts.push(rng.pick(INTERESTING_JSON));
      (s.parent as Record<string | number, unknown>)[s.key] = `${SENTINEL}${inserts.length - 1}`;
    } else if (op === 2 && all.length) {
      const s = rng.pick(all);
      if (Array.isArray(s.parent)) s.parent.splice(Number(s.key), 1);
      else delete s.parent[s.key as string];
    } else if (op === 3 && root && typeof root === 'object' && !Array.isArray(root)) {
      const key = extraKeys.length && rng.chance(0.7) ? rng.pick(extraKeys) : rng.pick(['unknown_field', '__proto__', 'constructor', 'x\n\u001b[2J', '']);
      inserts.push(rng.pick(INTERESTING_JSON));
      (root as Record<string, unknown>)[key] = `${SENTINEL}${inserts.length - 1}`;
    } else if (all.length) {
      // Same slot, a type change that keeps a plausible value.
      const s = rng.pick(all);
      const v = (s.parent as Record<string | number, unknown>)[s.key];
      (s.parent as Record<string | number, unknown>)[s.key] = typeof v === 'number' ? String(v) : Array.isArray(v) ? v[0] : typeof v === 'string' ? v.length : [v];
    }
  }
  return JSON.stringify(root).replace(/"\\u0000FUZZ\\u0000(\d+)"/g, (_, i: string) => inserts[Number(i)]!);
}

/** Header of a safetensors file (its JSON) and its data section, for structure-aware mutation. */
export function splitSafetensors(bytes: Uint8Array): { header: Record<string, unknown>; data: Uint8Array } {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, unknown>;
  return { header, data: bytes.subarray(8 + n) };
}

export function joinSafetensors(headerText: string, data: Uint8Array, declared?: number): Uint8Array {
  const h = new TextEncoder().encode(headerText);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(declared ?? h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

/**
 * Mutate a safetensors file: its header as JSON (shapes, offsets, dtypes, names, the manifest in
 * `__metadata__`), its declared length, its data bytes, or its bytes blindly.
 */
export function mutateSafetensors(rng: Rng, bytes: Uint8Array): Uint8Array {
  const { header, data } = splitSafetensors(bytes);
  switch (rng.int(6)) {
    case 0:
    case 1:
      return joinSafetensors(mutateJson(rng, header, ['__metadata__', 'base_model.extra.weight']), data);
    case 2: {
      // The manifest (JSON inside a metadata string), mutated as JSON.
      const meta = (header.__metadata__ ?? {}) as Record<string, string>;
      const key = rng.pick(Object.keys(meta).length ? Object.keys(meta) : ['tensorpeft.modules']);
      let inner: unknown = {};
      try {
        inner = JSON.parse(meta[key] ?? '{}');
      } catch {
        inner = {};
      }
      const h = { ...header, __metadata__: { ...meta, [key]: mutateJson(rng, inner, ['num_layers', 'num_heads', 'hidden_size', 'm.layer.99.q']) } };
      return joinSafetensors(JSON.stringify(h), data);
    }
    case 3: {
      // Rename a tensor (control characters, a near-duplicate, nothing).
      const keys = Object.keys(header).filter((k) => k !== '__metadata__');
      if (!keys.length) return mutateBytes(rng, bytes);
      const k = rng.pick(keys);
      const h: Record<string, unknown> = {};
      for (const [kk, v] of Object.entries(header)) h[kk === k ? rng.pick([`${k}\n\u001b[31m`, `${k} `, '', '__metadata__x', k.replace('lora_A', 'lora_B')]) : kk] = v;
      return joinSafetensors(JSON.stringify(h), data);
    }
    case 4: {
      // Data bytes: NaN/Inf/huge patterns in the tensor values.
      const d = Uint8Array.from(data);
      for (let k = 0; k < 1 + rng.int(4) && d.length >= 4; k++) {
        const at = rng.int(d.length >> 2) << 2;
        new DataView(d.buffer).setFloat32(at, rng.pick([NaN, Infinity, -Infinity, 3e38, 1e-45, 65504, 1e10]), true);
      }
      return joinSafetensors(JSON.stringify(header), d);
    }
    default: {
      const out = Uint8Array.from(bytes);
      if (rng.chance(0.5)) new DataView(out.buffer).setBigUint64(0, BigInt(rng.pick([0, 1, 7, 2 ** 32, 2 ** 53, 100_000_001, out.length, out.length - 7])), true);
      return mutateBytes(rng, out);
    }
  }
}
