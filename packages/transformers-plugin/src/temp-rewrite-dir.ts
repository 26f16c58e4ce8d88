/**
 * `from_pretrained` without `rewrite_cache` in Node (issue 16): the load goes through a rewrite
 * cache in a fresh temporary folder, removed once the model is loaded. A local model is then
 * rewritten file to file and ONNX Runtime reads the rewritten file by path, as plain transformers.js
 * has it read the model — instead of the model read into a fresh buffer and the spliced parts joined
 * into another (fresh memory is slow: page faults; see proto-splice-file.ts). Nothing stays on disk.
 */
import { IS_NODE } from './model-files.js';

const FS_MODULE = 'node:fs/promises';
const OS_MODULE = 'node:os';
const PATH_MODULE = 'node:path';

/** Prefix of the temporary folders (under the OS temp folder). */
export const TEMP_PREFIX = 'tensorpeft-rewrite-';

/** `fn(dir)` with a fresh temporary folder (removed after, whatever `fn` does); `fn(undefined)` outside Node. */
export async function withTempRewriteDir<T>(fn: (dir: string | undefined) => Promise<T>): Promise<T> {
  if (!IS_NODE) return fn(undefined);
  const fs = (await import(/* @vite-ignore */ FS_MODULE)) as typeof import('node:fs/promises');
  const os = (await import(/* @vite-ignore */ OS_MODULE)) as typeof import('node:os');
  const path = (await import(/* @vite-ignore */ PATH_MODULE)) as typeof import('node:path');
  let dir: string | undefined;
  try {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), TEMP_PREFIX));
  } catch {
    // No writable temp folder: the in-memory path.
    return fn(undefined);
  }
  try {
    return await fn(dir);
  } finally {
    await fs.rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
}
