/**
 * `tensorpeft selftest` and `tensorpeft bench` as commands (called directly; main.ts wires them).
 * The benchmark itself is never run here: timings are not tests.
 */
import { describe, expect, it } from 'vitest';
import { UsageError } from '../args.js';
import { benchCommand } from './bench.js';
import { selftestCommand } from './selftest.js';

async function run(cmd: (argv: string[], io: { out: (t: string) => void; err: (t: string) => void }) => Promise<number>, ...argv: string[]) {
  let out = '';
  let err = '';
  const code = await cmd(argv, { out: (t) => (out += `${t}\n`), err: (t) => (err += `${t}\n`) });
  return { code, out, err };
}

describe('tensorpeft selftest', () => {
  it('--backend wasm --json prints {backend, passed, failed, max_rel_err} and exits 0', async () => {
    const r = await run(selftestCommand, '--backend', 'wasm', '--json', '--rounds', '3');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j).toMatchObject({ backend: 'wasm', failed: 0 });
    expect(j.passed).toBeGreaterThan(40);
    expect(j.max_rel_err).toBeGreaterThan(0);
    expect(j.max_rel_err).toBeLessThan(1e-5);
    expect(j.tolerance).toMatch(/2⁻²⁴/);
  });

  it('prints a one-line summary without --json', async () => {
    const r = await run(selftestCommand, '--backend', 'wasm', '--rounds', '1');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^selftest wasm vs js: \d+ passed, 0 failed; max_rel_err/);
  });
});

describe('tensorpeft bench', () => {
  it('needs the benchmark name', async () => {
    await expect(run(benchCommand, '--json')).rejects.toBeInstanceOf(UsageError);
    await expect(run(benchCommand, 'swap')).rejects.toThrow(/"kernels"/);
  });
});
