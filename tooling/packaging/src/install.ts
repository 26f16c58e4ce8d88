/**
 * Copies an app of examples/ outside the monorepo and installs it the way a user would: plain
 * `npm install`, with the `@tensorpeft/*` packages taken from `pnpm pack` tarballs (`file:` specs,
 * and npm `overrides` so that their dependencies on each other resolve to the tarballs too, never
 * to the registry). Everything else comes from the npm registry. Every command runs asynchronously:
 * a test worker blocked for minutes misses vitest's RPC deadlines.
 */
import { execFile } from 'node:child_process';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT, type Packed } from './pack.js';

/** npm's environment: onnxruntime-node must not try to download CUDA binaries (none needed, no network for them). */
export const NPM_ENV: NodeJS.ProcessEnv = { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip', ONNXRUNTIME_NODE_INSTALL_CUDA: 'skip', npm_config_fund: 'false', npm_config_audit: 'false', npm_config_update_notifier: 'false' };

export interface ShResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run a command in `cwd` to its end (never throws): exit code, stdout, stderr. */
export function shRun(cmd: string, args: string[], cwd: string, timeoutMs = 300_000): Promise<ShResult> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, env: NPM_ENV, encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : -1) : 0;
      resolve({ code, stdout, stderr: err && code === -1 ? `${stderr}\n${err.message}` : stderr });
    });
  });
}

/** Run a command; its stdout, or an error carrying all its output. */
export async function sh(cmd: string, args: string[], cwd: string, timeoutMs = 300_000): Promise<string> {
  return (await shAllResult(cmd, args, cwd, timeoutMs)).stdout;
}

/** Like `sh`, but returns stdout and stderr together (build tools warn on stderr). */
export async function shAll(cmd: string, args: string[], cwd: string, timeoutMs = 300_000): Promise<string> {
  const r = await shAllResult(cmd, args, cwd, timeoutMs);
  return `${r.stdout}${r.stderr}`;
}

async function shAllResult(cmd: string, args: string[], cwd: string, timeoutMs: number): Promise<ShResult> {
  const r = await shRun(cmd, args, cwd, timeoutMs);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed in ${cwd} (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** Copy `examples/<name>` to `dest` (without installed or built files) and `npm install` it from the tarballs. */
export async function installExample(name: string, dest: string, packed: readonly Packed[]): Promise<void> {
  const src = path.join(ROOT, 'examples', name);
  cpSync(src, dest, { recursive: true, filter: (f) => !/^(node_modules|dist|public[/\\]ort|public[/\\]models|public[/\\]adapters)([/\\]|$)/.test(path.relative(src, f)) });
  const file = path.join(dest, 'package.json');
  const pkg = JSON.parse(readFileSync(file, 'utf8')) as { dependencies?: Record<string, string>; devDependencies?: Record<string, string>; overrides?: Record<string, string> };
  const specs = Object.fromEntries(packed.map((p) => [p.name, `file:${p.tarball}`]));
  for (const deps of [pkg.dependencies, pkg.devDependencies]) {
    for (const dep of Object.keys(deps ?? {})) {
      if (dep.startsWith('@tensorpeft/')) {
        if (!specs[dep]) throw new Error(`examples/${name} depends on ${dep}, which is not a packed public package`);
        deps![dep] = specs[dep]!;
      }
    }
  }
  pkg.overrides = specs;
  writeFileSync(file, JSON.stringify(pkg, null, 2));
  await sh('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'], dest, 600_000);
}

/** `tsc -p <config>` in an installed example: the error lines (empty when it compiles). */
export async function tscErrors(dir: string, config: string): Promise<string[]> {
  const r = await shRun(process.execPath, [path.join(dir, 'node_modules/typescript/bin/tsc'), '-p', config, '--pretty', 'false'], dir);
  return r.stdout.split('\n').filter((l) => /error TS\d+/.test(l));
}
