/**
 * The seam for reading what the methods' official (paper) code saves. Each method that has an
 * official format supplies an `OfficialImporter` from its own folder (`methods/<m>/import.ts`);
 * the generic code (io/official/import.ts) picks one by `from` or by detection, and turns its parts
 * into an Adapter exactly as a native file would be (schema, plan, tensor checks).
 */
import type { ModelShape } from '../../model/shape.js';
import type { TensorMap } from '../../tensor.js';
import type { ParamPlan } from '../../methods/types.js';

/** The files of an official output folder (or one file), by base name. */
export interface OfficialFiles {
  files: ReadonlyMap<string, Uint8Array>;
  /** Folder or file path, for messages. */
  source?: string;
}

export interface OfficialImportOptions {
  /** Model shape (`--model`): what the files cannot say (heads, layers, dims of untouched modules). */
  shape?: ModelShape;
  /** Fields that override what the importer derives (`--config`). */
  config?: Record<string, unknown>;
  allowNonFinite?: boolean;
}

/** What an importer produces: a native config, the method tensors, modules_to_save tensors, the shape planned for. */
export interface ImportedParts {
  config: Record<string, unknown>;
  params: TensorMap;
  extras: TensorMap;
  shape: ModelShape;
  /** Things the reader should know (fields dropped as informative, tensors duplicated, …). */
  notes: string[];
}

export interface OfficialImporter {
  /** `--from` name (the method's CLI name). */
  readonly from: string;
  /** The official code this reads, for help texts. */
  readonly source: string;
  /** Whether the files look like this method's official output (cheap: config and file names first). */
  detect(f: OfficialFiles): boolean;
  importFiles(f: OfficialFiles, opts: OfficialImportOptions): ImportedParts;
  /**
   * Optional: the files the official code reads for this adapter (`export --to official`), names →
   * bytes, plus notes. Throws ConfigError naming what the official format cannot hold.
   */
  exportFiles?(a: ExportSource): { files: Map<string, Uint8Array>; notes: string[] };
}

/** What an exporter needs of an adapter (a structural subset of io/adapter.ts's Adapter). */
export interface ExportSource {
  config: Record<string, unknown>;
  plan: ParamPlan;
  params: TensorMap;
  extras: TensorMap;
  shape: ModelShape;
}
