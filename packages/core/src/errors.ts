/**
 * Typed errors. Every error carries structured fields (file, tensor, field, expected, found) so
 * that the edge (CLI, UI) can render them once; libraries never print.
 */
export interface ErrorDetails {
  /** File (path or URL) the problem was found in. */
  file?: string;
  /** Tensor key inside a safetensors file. */
  tensor?: string;
  /** Config field (dotted path) or module path. */
  field?: string;
  /** What was expected, in words or as a value. */
  expected?: unknown;
  /** What was actually found. */
  found?: unknown;
}

/** Longest rendering of one detail value (expected/found); longer ones end in `…`. */
export const MAX_RENDERED_VALUE = 500;

// C0 and C1 controls, DEL, line/paragraph separators and bidi overrides/isolates: anything that
// can break a one-line error, move the cursor, recolour a terminal or reorder what is displayed.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const SHORT_ESCAPES: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/**
 * Escape control characters (as `\n`, `\t`, `\r` or `\uXXXX`) so that a file-controlled string
 * cannot add lines or terminal escapes to a rendered error. Idempotent: a backslash is printable.
 */
export function escapeControl(s: string): string {
  return s.replace(CONTROL, (c) => SHORT_ESCAPES[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * One-line rendering of a detail value: strings as they are, anything else as compact JSON, at
 * most `max` characters. Iterative (an explicit stack, never recursion), so a value nested
 * 100,000 deep from a hostile file renders its first characters instead of overflowing the stack;
 * cycles render as `[Circular]`, non-finite numbers as `NaN`/`Infinity`.
 */
export function renderValue(v: unknown, max = MAX_RENDERED_VALUE): string {
  if (typeof v === 'string') return v.length > max ? `${v.slice(0, max)}…` : v;
  let out = '';
  // Work items: a literal to emit, or a value to render (with the containers above it, for cycles).
  type Item = { lit: string } | { val: unknown; above: ReadonlySet<object> };
  const stack: Item[] = [{ val: v, above: new Set() }];
  while (stack.length > 0) {
    if (out.length > max) return `${out.slice(0, max)}…`;
    const it = stack.pop()!;
    if ('lit' in it) {
      out += it.lit;
      continue;
    }
    const x = it.val;
    if (x === null || x === undefined) out += String(x);
    else if (typeof x === 'string') out += JSON.stringify(x.length > max ? `${x.slice(0, max)}…` : x);
    else if (typeof x === 'number') out += Number.isFinite(x) ? JSON.stringify(x) : String(x);
    else if (typeof x === 'boolean' || typeof x === 'bigint') out += String(x);
    else if (typeof x === 'object') {
      if (it.above.has(x)) {
        out += '[Circular]';
        continue;
      }
      if (ArrayBuffer.isView(x)) {
        out += `${x.constructor.name}(${(x as unknown as { length?: number }).length ?? x.byteLength})`;
        continue;
      }
      const above = new Set(it.above).add(x);
      const isArr = Array.isArray(x);
      // Only as many children as can still be shown are queued (the rest is cut anyway).
      const keys = isArr ? undefined : Object.keys(x);
      const count = isArr ? x.length : keys!.length;
      const take = Math.min(count, max - out.length + 1);
      const items: Item[] = [{ lit: isArr ? '[' : '{' }];
      for (let i = 0; i < take; i++) {
        if (i > 0) items.push({ lit: ',' });
        if (isArr) items.push({ val: x[i], above });
        else {
          items.push({ lit: `${JSON.stringify(keys![i])}:` });
          items.push({ val: (x as Record<string, unknown>)[keys![i]!], above });
        }
      }
      items.push({ lit: take < count ? ',…' : isArr ? ']' : '}' });
      for (let i = items.length - 1; i >= 0; i--) stack.push(items[i]!);
    } else out += typeof x; // function, symbol
  }
  return out.length > max ? `${out.slice(0, max)}…` : out;
}

/** Base class of every error this project throws on purpose. */
export class TensorPeftError extends Error {
  /**
   * A literal in every class of this project (a field, so it is set after this constructor):
   * minifiers rename classes, and the name is what users match on. Subclasses declared elsewhere
   * without one get their class name.
   */
  override name: string = 'TensorPeftError';
  /** Stable machine-readable code (survives minification and translation of messages). */
  readonly code: string = 'TENSORPEFT_ERROR';
  readonly details: ErrorDetails;
  /** The message without the rendered details, for re-wrapping with more context. */
  readonly summary: string;
  constructor(message: string, details: ErrorDetails = {}) {
    const where = [
      details.file !== undefined ? `file ${renderValue(details.file)}` : undefined,
      details.tensor !== undefined ? `tensor ${renderValue(details.tensor)}` : undefined,
      details.field !== undefined ? `field ${renderValue(details.field)}` : undefined,
    ].filter(Boolean);
    const ef = [
      details.expected !== undefined ? `expected ${renderValue(details.expected)}` : undefined,
      details.found !== undefined ? `found ${renderValue(details.found)}` : undefined,
    ].filter(Boolean);
    let full = message;
    if (where.length) full += ` (${where.join(', ')})`;
    if (ef.length) full += `: ${ef.join(', ')}`;
    // One line, whatever the file put in its names and values (D15 of issue 15).
    super(escapeControl(full));
    if (new.target !== TensorPeftError) this.name = new.target.name;
    this.details = details;
    this.summary = message;
  }

  /** The same error with more context (e.g. the file name) merged into its details. */
  withDetails(more: ErrorDetails): this {
    const Ctor = this.constructor as new (m: string, d: ErrorDetails) => this;
    return new Ctor(this.summary, { ...this.details, ...more });
  }
}

/** A file (safetensors, adapter folder) is malformed, truncated, or inconsistent. */
export class AdapterFormatError extends TensorPeftError {
  override name = 'AdapterFormatError';
  override readonly code: string = 'ADAPTER_FORMAT';
}

/** An adapter_config.json (or a --config JSON) is invalid. */
export class ConfigError extends TensorPeftError {
  override name = 'ConfigError';
  override readonly code: string = 'CONFIG_INVALID';
}

/** A tensor or module has a shape other than the one the method/model requires. */
export class ShapeMismatchError extends TensorPeftError {
  override name = 'ShapeMismatchError';
  override readonly code: string = 'SHAPE_MISMATCH';
}

/** Model shape problems: unknown preset, unsupported architecture, bad config.json. */
export class ModelShapeError extends TensorPeftError {
  override name = 'ModelShapeError';
  override readonly code: string = 'MODEL_SHAPE';
}

/** Numeric problem in stored data: NaN or Inf values. */
export class NonFiniteError extends TensorPeftError {
  override name = 'NonFiniteError';
  override readonly code: string = 'NON_FINITE';
}

/** Network / fetch problems (status codes, size caps). */
export class FetchError extends TensorPeftError {
  override name = 'FetchError';
  override readonly code: string = 'FETCH_FAILED';
}

/** A request got no response headers, or no body bytes, within its timeout. */
export class FetchTimeoutError extends FetchError {
  override name = 'FetchTimeoutError';
  override readonly code: string = 'FETCH_TIMEOUT';
}

/** A redirect the loader's redirect policy does not allow (another origin, too many hops). */
export class FetchRedirectError extends FetchError {
  override name = 'FetchRedirectError';
  override readonly code: string = 'FETCH_REDIRECT';
}

/** A download or file larger than its size cap (declared length, streamed bytes, or file size). */
export class SizeLimitError extends FetchError {
  override name = 'SizeLimitError';
  override readonly code: string = 'SIZE_LIMIT';
}
