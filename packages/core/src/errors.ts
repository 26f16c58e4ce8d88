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

function render(v: unknown): string {
  if (typeof v === 'string') return v;
  try {
    return JSON.stringify(v);
  } catch {
    return String(v);
  }
}

/** Base class of every error this project throws on purpose. */
export class TensorPeftError extends Error {
  readonly details: ErrorDetails;
  /** The message without the rendered details, for re-wrapping with more context. */
  readonly summary: string;
  constructor(message: string, details: ErrorDetails = {}) {
    const where = [
      details.file !== undefined ? `file ${details.file}` : undefined,
      details.tensor !== undefined ? `tensor ${details.tensor}` : undefined,
      details.field !== undefined ? `field ${details.field}` : undefined,
    ].filter(Boolean);
    const ef = [
      details.expected !== undefined ? `expected ${render(details.expected)}` : undefined,
      details.found !== undefined ? `found ${render(details.found)}` : undefined,
    ].filter(Boolean);
    let full = message;
    if (where.length) full += ` (${where.join(', ')})`;
    if (ef.length) full += `: ${ef.join(', ')}`;
    super(full);
    this.name = new.target.name;
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
export class AdapterFormatError extends TensorPeftError {}

/** An adapter_config.json (or a --config JSON) is invalid. */
export class ConfigError extends TensorPeftError {}

/** A tensor or module has a shape other than the one the method/model requires. */
export class ShapeMismatchError extends TensorPeftError {}

/** Model shape problems: unknown preset, unsupported architecture, bad config.json. */
export class ModelShapeError extends TensorPeftError {}

/** Numeric problem in stored data: NaN or Inf values. */
export class NonFiniteError extends TensorPeftError {}

/** Network / fetch problems (status codes, size caps). */
export class FetchError extends TensorPeftError {}
