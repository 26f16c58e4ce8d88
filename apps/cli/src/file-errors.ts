/**
 * Node's file-system errors (ENOENT, EACCES, …) as one typed line: any file the user names that a
 * command cannot open is reported as `FileNotFoundError` / `FileAccessError` with the path, never as
 * a raw `ENOENT: no such file or directory, open '…'`.
 */
import { TensorPeftError } from '@tensorpeft/core';

/** A file or folder named on the command line (or inside a file it names) does not exist. */
export class FileNotFoundError extends TensorPeftError {
  override name = 'FileNotFoundError';
  override readonly code: string = 'FILE_NOT_FOUND';
}

/** A file or folder exists but cannot be read or written (permissions, a folder where a file is expected, …). */
export class FileAccessError extends TensorPeftError {
  override name = 'FileAccessError';
  override readonly code: string = 'FILE_ACCESS';
}

const WHAT: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EISDIR: 'a folder where a file is expected',
  ENOTDIR: 'a file where a folder is expected',
  EEXIST: 'already exists',
};

/** The typed error for a Node fs error, or undefined when `e` is not one. */
export function fromFsError(e: unknown): TensorPeftError | undefined {
  const x = e as { code?: unknown; path?: unknown; syscall?: unknown };
  if (typeof x?.code !== 'string' || !(x.code in WHAT)) return undefined;
  const what = WHAT[x.code]!;
  const details = typeof x.path === 'string' ? { file: x.path } : {};
  return x.code === 'ENOENT' ? new FileNotFoundError(what, details) : new FileAccessError(`${what}${typeof x.syscall === 'string' ? ` (${x.syscall})` : ''}`, details);
}
