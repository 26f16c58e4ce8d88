/**
 * Packs the public packages the way a release would (`pnpm pack`: `workspace:*` becomes the
 * version, only `files` ship) so tests can lint the tarballs and install them with plain npm
 * outside the monorepo. Needs each package's `dist/` (`pnpm test` builds everything first).
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/**
 * Folders of the packages published to npm: every workspace package under packages/ and apps/
 * that is not `private` (so a new package is packed and checked without editing this file).
 */
export const PUBLIC_PACKAGES: readonly string[] = ['packages', 'apps'].flatMap((group) =>
  readdirSync(path.join(ROOT, group), { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(path.join(ROOT, group, d.name, 'package.json')))
    .map((d) => `${group}/${d.name}`)
    .filter((dir) => !(JSON.parse(readFileSync(path.join(ROOT, dir, 'package.json'), 'utf8')) as { private?: boolean }).private)
    .sort(),
);

/** The same pnpm as the README and .ci/run. */
export const PNPM: readonly string[] = ['--yes', 'pnpm@10.34.9'];

export interface Packed {
  /** Package name, e.g. `@tensorpeft/core`. */
  name: string;
  version: string;
  /** Workspace folder, relative to the repository root. */
  dir: string;
  /** Absolute path of the `.tgz`. */
  tarball: string;
}

/** `pnpm pack` every public package into `dest` (one recursive pnpm call), in PUBLIC_PACKAGES order. */
export async function packAll(dest: string): Promise<Packed[]> {
  const dirs = PUBLIC_PACKAGES.map((dir) => {
    const abs = path.join(ROOT, dir);
    if (!existsSync(path.join(abs, 'dist'))) throw new Error(`${dir}/dist is missing: build the packages first (pnpm build)`);
    const pkg = JSON.parse(readFileSync(path.join(abs, 'package.json'), 'utf8')) as { name: string; version: string };
    return { dir, ...pkg };
  });
  const filters = PUBLIC_PACKAGES.flatMap((dir) => ['--filter', `./${dir}`]);
  // Asynchronous: a test worker blocked for minutes misses vitest's RPC deadlines.
  const { stdout: out } = await run('npx', [...PNPM, '-r', ...filters, 'pack', '--pack-destination', dest, '--json'], { cwd: ROOT, maxBuffer: 64 << 20 });
  const list = JSON.parse(out) as { name: string; version: string; filename: string }[];
  return dirs.map(({ dir, name, version }) => {
    const hit = list.find((x) => x.name === name);
    if (!hit || !existsSync(hit.filename)) throw new Error(`pnpm pack made no tarball for ${name}: ${out.slice(0, 500)}`);
    return { name, version, dir, tarball: hit.filename };
  });
}
