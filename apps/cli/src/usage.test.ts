/**
 * What a first-time user of `tensorpeft` meets: --version, paths relative to the folder the command
 * was typed in, --json accepted by every command (errors as one JSON line), a typed one-line error
 * for every file that is not there, the time left on long progress bars, and a note when a
 * base-size model gets a made-up tokenizer.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createAdapter, presetShape, saveAdapter } from '@tensorpeft/core';
import { writeModel } from '@tensorpeft/model-gen';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callerDir } from './caller-dir.js';
import { tokenizerNote } from './commands/make-model.js';
import { COMMAND_NAMES, main } from './main.js';
import { etaSeconds, formatDuration, formatProgress } from './progress.js';

const BIN = fileURLToPath(new URL('../dist/bin.js', import.meta.url));
const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const PKG_VERSION = (JSON.parse(readFileSync(fileURLToPath(new URL('../package.json', import.meta.url)), 'utf8')) as { version: string }).version;

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, { out: (t) => (out += t), err: (t) => (err += t) });
  return { code, out, err };
}

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'tensorpeft-cli-usage-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('tensorpeft --version', () => {
  it('prints the package version, as text or JSON', async () => {
    expect(PKG_VERSION).toMatch(/^\d+\.\d+\.\d+/);
    expect(await run('--version')).toEqual({ code: 0, out: PKG_VERSION, err: '' });
    expect((await run('-V')).out).toBe(PKG_VERSION);
    const j = await run('--version', '--json');
    expect(JSON.parse(j.out)).toEqual({ name: '@tensorpeft/cli', version: PKG_VERSION });
  });
});

describe('relative paths are the caller’s', () => {
  it('under `pnpm tensorpeft` (npm_lifecycle_event tensorpeft) the folder is INIT_CWD, otherwise the working folder', () => {
    expect(callerDir({ npm_lifecycle_event: 'tensorpeft', INIT_CWD: '/home/u/proj' }, '/repo')).toBe('/home/u/proj');
    expect(callerDir({ npm_lifecycle_event: 'bench', INIT_CWD: '/home/u/proj' }, '/repo')).toBe('/repo');
    expect(callerDir({ npm_lifecycle_event: 'tensorpeft' }, '/repo')).toBe('/repo');
    expect(callerDir({}, '/repo')).toBe('/repo');
  });

  it('the built binary run from the repository root as `pnpm tensorpeft` does writes a relative --out under INIT_CWD', async () => {
    const exec = promisify(execFile);
    const env = { ...process.env, npm_lifecycle_event: 'tensorpeft', INIT_CWD: tmp };
    const r = await exec(process.execPath, [BIN, 'init', '--model', 'distilbert-base', '--method', 'lora', '--config', '{"r":2,"target_modules":["q_lin"]}', '--out', 'rel-out'], { cwd: ROOT, env });
    expect(JSON.parse(r.stdout)).toMatchObject({ peft_type: 'LORA' });
    expect(existsSync(path.join(tmp, 'rel-out', 'adapter_config.json'))).toBe(true);
    expect(existsSync(path.join(ROOT, 'rel-out'))).toBe(false);
  });
});

describe('--json everywhere', () => {
  it('every command accepts --json (an unknown option after it is the one refused), errors as one JSON line', async () => {
    expect(COMMAND_NAMES.length).toBeGreaterThanOrEqual(11);
    for (const name of COMMAND_NAMES) {
      const r = await run(name, '--json', '--no-such-option');
      expect({ name, code: r.code, out: r.out }).toEqual({ name, code: 2, out: '' });
      const lines = r.err.trim().split('\n');
      expect(lines).toHaveLength(1);
      const e = JSON.parse(lines[0]!) as { error: { name: string; code: string; message: string } };
      expect({ name, error: e.error.name, code: e.error.code }).toEqual({ name, error: 'UsageError', code: 'USAGE' });
      expect(e.error.message).toContain('--no-such-option');
      expect(e.error.message).not.toContain("'--json'");
    }
  });

  it('a JSON-only command prints the same JSON with or without --json', async () => {
    const args = ['params', '--model', 'roberta-base', '--method', 'lora', '--config', '{"r":8,"target_modules":["query","value"]}'];
    const plain = await run(...args);
    const json = await run(...args, '--json');
    expect(json.code).toBe(0);
    expect(JSON.parse(json.out)).toEqual(JSON.parse(plain.out));
    expect(JSON.parse(json.out).trainable).toBe(2 * 12 * (8 * 768 + 768 * 8)); // r·(n+m) per module, q and v in 12 layers
  });

  it('a typed error with --json: name, code, message and the file on one stderr line, exit 1', async () => {
    const missing = path.join(tmp, 'no-adapter-here');
    const r = await run('inspect', missing, '--json');
    expect(r.code).toBe(1);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    const e = JSON.parse(r.err) as { error: { name: string; code: string; message: string } };
    expect(e.error.name).toMatch(/Error$/);
    expect(e.error.code).toMatch(/^[A-Z_]+$/);
    expect(e.error.message).toContain('no-adapter-here');
  });
});

describe('missing files: typed one-line errors', () => {
  function oneTypedLine(err: string, command: string, name: string): string {
    const lines = err.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^tensorpeft ${command}: ${name}: `));
    expect(lines[0]).not.toMatch(/ENOENT:|\bat .*:\d+:\d+/);
    return lines[0]!;
  }

  it('--config @missing.json', async () => {
    const r = await run('params', '--model', 'roberta-base', '--method', 'lora', '--config', `@${path.join(tmp, 'missing.json')}`);
    expect(r.code).toBe(1);
    expect(oneTypedLine(r.err, 'params', 'ConfigError')).toContain('missing.json');
  });

  it('verify --model /nonexistent, and a model folder without config.json', async () => {
    const r = await run('verify', '--model', '/nonexistent', '--adapter', tmp);
    expect(r.code).toBe(1);
    expect(oneTypedLine(r.err, 'verify', 'FileNotFoundError')).toContain('model folder not found (file /nonexistent)');
    const empty = await run('verify', '--model', tmp, '--adapter', tmp);
    expect(oneTypedLine(empty.err, 'verify', 'FileNotFoundError')).toContain(`model folder has no config.json (file ${path.join(tmp, 'config.json')})`);
  });

  it("verify names the user's adapter (its folder) in errors, never \"verify\"", async () => {
    const model = path.join(tmp, 'tiny-distilbert');
    await writeModel({ arch: 'distilbert', size: 'tiny', numLabels: 2 }, model);
    const dir = path.join(tmp, 'my-base-size-adapter');
    await saveAdapter(createAdapter({ method: 'LORA', shape: presetShape('distilbert-base'), nonzero: true, seed: 1 }), dir);
    const r = await run('verify', '--model', model, '--adapter', dir);
    expect(r.code).toBe(1);
    const line = oneTypedLine(r.err, 'verify', 'ShapeMismatchError');
    expect(line).toContain('adapter "my-base-size-adapter" does not fit this model');
    expect(line).not.toContain('"verify"');
  });

  it('--out under a file (ENOTDIR from node:fs) is a FileAccessError naming the path', async () => {
    const file = path.join(tmp, 'a-file');
    await writeFile(file, 'x');
    const r = await run('init', '--model', 'distilbert-base', '--method', 'lora', '--out', path.join(file, 'sub'));
    expect(r.code).toBe(1);
    expect(oneTypedLine(r.err, 'init', 'FileAccessError')).toContain(`a file where a folder is expected (mkdir) (file ${path.join(file, 'sub')})`);
  });
});

describe('progress bars show the time left', () => {
  it('eta = elapsed · (100 − p) / p once 1 % and 1 s are reached', () => {
    expect(etaSeconds(25, 10_000)).toBe(30);
    expect(etaSeconds(50, 4_000)).toBe(4);
    expect(etaSeconds(0.5, 10_000)).toBeUndefined();
    expect(etaSeconds(30, 500)).toBeUndefined();
    expect(etaSeconds(100, 9_000)).toBeUndefined();
  });

  it('durations read as s, m, h', () => {
    expect([formatDuration(0), formatDuration(59.4), formatDuration(61), formatDuration(3599), formatDuration(3720)]).toEqual(['0s', '59s', '1m01s', '59m59s', '1h02m']);
  });

  it('the bar carries it', () => {
    const line = formatProgress({ status: 'fit', progress: 20, iteration: 40, rel_error: 0.25 } as Parameters<typeof formatProgress>[0], 30_000);
    expect(line).toBe(`[${'#'.repeat(6)}${'.'.repeat(24)}]  20% fit     it 40 rel 0.2500 eta 2m00s`);
  });
});

describe('make-model: a base-size model with a made-up tokenizer says so', () => {
  it('only base size with a generated tokenizer gets the note', () => {
    expect(tokenizerNote('base', 'llama', 'generated')).toMatch(/no real tokenizer files for llama/);
    expect(tokenizerNote('tiny', 'llama', 'generated')).toBeUndefined();
    expect(tokenizerNote('base', 'distilbert', 'distilbert-fixture')).toBeUndefined();
    expect(tokenizerNote('base', 'vit', undefined)).toBeUndefined();
  });
});
