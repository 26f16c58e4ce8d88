/**
 * Local files, in Node only. The Node modules are imported at run time, behind the `IS_NODE`
 * check, with specifiers bundlers do not follow: a browser bundle of core then has no `node:*`
 * import to externalize or polyfill (the bundle test in browser-bundle.test.ts checks it), and this
 * code never runs there.
 */
import { AdapterFormatError } from '../errors.js';

/** Node (or a runtime with Node's modules: Bun, Deno's node compatibility). */
export const IS_NODE = typeof process !== 'undefined' && typeof process.versions?.node === 'string';

type Fs = typeof import('node:fs/promises');
type Url = typeof import('node:url');

// Specifiers in variables: bundlers leave `import(variable)` alone (Vite with @vite-ignore).
const FS_MODULE = 'node:fs/promises';
const URL_MODULE = 'node:url';

function nodeOnly(what: string): never {
  throw new AdapterFormatError(`${what} needs Node (in the browser, give a URL, a File/Blob or bytes)`);
}

export async function nodeFs(): Promise<Fs> {
  if (!IS_NODE) nodeOnly('reading local files');
  return (await import(/* @vite-ignore */ FS_MODULE)) as Fs;
}

/** `file:///a/b` → `/a/b` (platform path). */
export async function fileUrlToPath(url: string): Promise<string> {
  if (!IS_NODE) nodeOnly('a file: URL');
  return ((await import(/* @vite-ignore */ URL_MODULE)) as Url).fileURLToPath(url);
}

/** Whether `path` is a folder on the local file system (false where there is none). */
export async function isLocalDir(path: string): Promise<boolean> {
  if (!IS_NODE) return false;
  try {
    return (await (await nodeFs()).stat(path)).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Read one local file with a size cap, checked on the file's size before anything is allocated,
 * reading in chunks so `onProgress` can report.
 */
export async function readLocalFile(path: string, maxBytes: number, onProgress?: (loaded: number, total: number) => void): Promise<Uint8Array> {
  const fs = await nodeFs();
  let fh: Awaited<ReturnType<Fs['open']>>;
  try {
    fh = await fs.open(path, 'r');
  } catch (e) {
    const code = (e as { code?: string }).code;
    throw new AdapterFormatError(code === 'ENOENT' ? 'adapter file not found' : `cannot read adapter file: ${(e as Error).message}`, { file: path });
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new AdapterFormatError('adapter file is not a regular file', { file: path });
    const total = st.size;
    if (total > maxBytes) throw new AdapterFormatError('adapter file is larger than the size limit', { file: path, expected: `≤ ${maxBytes} bytes`, found: `${total} bytes` });
    const out = new Uint8Array(total);
    const CHUNK = 1 << 20;
    let loaded = 0;
    while (loaded < total) {
      const { bytesRead } = await fh.read(out, loaded, Math.min(CHUNK, total - loaded), loaded);
      if (bytesRead === 0) throw new AdapterFormatError('adapter file shrank while it was read', { file: path, expected: `${total} bytes`, found: `${loaded} bytes` });
      loaded += bytesRead;
      onProgress?.(loaded, total);
    }
    if (total === 0) onProgress?.(0, 0);
    return out;
  } finally {
    await fh.close();
  }
}

/** Write files into `dir` (created if needed). */
export async function writeLocalFiles(dir: string, files: Record<string, string | Uint8Array>): Promise<void> {
  const fs = await nodeFs();
  await fs.mkdir(dir, { recursive: true });
  for (const [name, data] of Object.entries(files)) await fs.writeFile(`${dir.replace(/[\\/]+$/, '')}/${name}`, data);
}
