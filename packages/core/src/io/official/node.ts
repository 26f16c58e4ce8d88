/**
 * Official output folders (or single checkpoint files) on the local file system, through core's
 * Node-only file helpers (node-files.ts), so the browser bundle stays free of `node:*` imports.
 */
import { AdapterFormatError } from '../../errors.js';
import { DEFAULT_MAX_BYTES } from '../fetch.js';
import { IS_NODE, isLocalDir, nodeFs, readLocalFile } from '../node-files.js';
import { detectOfficial, importOfficial, type ImportedAdapter } from './import.js';
import type { OfficialFiles, OfficialImportOptions } from './types.js';

/** File names an importer may read: configs, PEFT weights, torch checkpoints. */
const WANTED = /^(adapter_config\.json|adapter_model\.(bin|safetensors)|.+\.(pth|pt|bin))$/;

function split(location: string): { dir: string; base: string } {
  const clean = location.replace(/\/+$/, '');
  const i = clean.lastIndexOf('/');
  return i < 0 ? { dir: '.', base: clean } : { dir: clean.slice(0, i) || '/', base: clean.slice(i + 1) };
}

async function listing(location: string): Promise<{ dir: string; names: string[]; folder: boolean }> {
  if (await isLocalDir(location)) {
    const names = (await (await nodeFs()).readdir(location)).filter((n) => WANTED.test(n)).sort();
    return { dir: location.replace(/\/+$/, ''), names, folder: true };
  }
  const { dir, base } = split(location);
  // A path to one file of an adapter folder stands for the folder (as loadAdapter takes it).
  if (/^adapter_(config\.json|model\.(bin|safetensors))$/.test(base) && (await isLocalDir(dir))) return listing(dir);
  return { dir, names: [base], folder: false };
}

/** Read the files of an official folder (or one file) with a per-file size cap. */
export async function readOfficialFiles(location: string, maxBytes = DEFAULT_MAX_BYTES, only?: (name: string) => boolean): Promise<OfficialFiles> {
  const { dir, names, folder } = await listing(location);
  const files = new Map<string, Uint8Array>();
  for (const n of names) if (!only || only(n)) files.set(n, await readLocalFile(`${dir}/${n}`, maxBytes));
  if (files.size === 0 && !only) throw new AdapterFormatError('no official checkpoint files found', { file: location, expected: 'adapter_config.json, adapter_model.bin/.safetensors or *.pth' });
  return { files, source: folder ? dir : location };
}

/**
 * The hook for loaders: when a local folder or file is an official method checkpoint (judged from
 * its file names and adapter_config.json, without reading the weights first), import it;
 * otherwise undefined (a native folder, a URL, or not Node).
 */
export async function loadOfficialIfAny(location: string, opts: OfficialImportOptions & { maxBytes?: number } = {}): Promise<ImportedAdapter | undefined> {
  if (!IS_NODE || /^[a-z][a-z0-9+.-]*:\/\//i.test(location)) return undefined;
  let light: OfficialFiles;
  try {
    light = await readOfficialFiles(location, opts.maxBytes, (n) => n === 'adapter_config.json');
  } catch {
    return undefined;
  }
  const { names } = await listing(location);
  // Detection sees every name (empty bytes for the weights) and the real config.
  const probe: OfficialFiles = { files: new Map(names.map((n) => [n, light.files.get(n) ?? new Uint8Array()])), source: location };
  const from = detectOfficial(probe);
  if (from === undefined) return undefined;
  const files = await readOfficialFiles(location, opts.maxBytes);
  return importOfficial(files, { ...opts, from });
}
