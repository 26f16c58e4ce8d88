/**
 * Reading an official output folder (or a single checkpoint file) from disk. Node modules are
 * imported dynamically so the package stays loadable in browsers.
 */
import { AdapterFormatError } from '../../errors.js';
import { DEFAULT_MAX_BYTES } from '../load.js';
import type { OfficialFiles } from './types.js';

/** File names an importer may read: configs, PEFT weights, torch checkpoints. */
const WANTED = /^(adapter_config\.json|adapter_model\.(bin|safetensors)|.*\.(pth|pt|bin|json))$/;

/** Read the files of an official folder (or one file) with a per-file size cap. */
export async function readOfficialFiles(location: string, maxBytes = DEFAULT_MAX_BYTES): Promise<OfficialFiles> {
  const fs = await import('node:fs/promises');
  const path = await import('node:path');
  let st;
  try {
    st = await fs.stat(location);
  } catch {
    throw new AdapterFormatError('official checkpoint not found', { file: location });
  }
  const names = st.isDirectory() ? (await fs.readdir(location)).filter((n) => WANTED.test(n)) : [path.basename(location)];
  const dir = st.isDirectory() ? location : path.dirname(location);
  const files = new Map<string, Uint8Array>();
  for (const n of names.sort()) {
    const p = path.join(dir, n);
    const s = await fs.stat(p);
    if (!s.isFile()) continue;
    if (s.size > maxBytes) throw new AdapterFormatError('file is larger than the size limit', { file: p, expected: `≤ ${maxBytes} bytes`, found: `${s.size} bytes` });
    const b = await fs.readFile(p);
    files.set(n, new Uint8Array(b.buffer, b.byteOffset, b.byteLength));
  }
  return { files, source: location };
}
