/**
 * Errors reach the terminal as one line with control characters escaped, whatever a file or an
 * argument puts in names (issue 15, D15).
 */
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { writeSafetensors } from '@tensorpeft/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from './main.js';

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;
const EVIL = 'base_model.model.x\n\u001b[31mFAKE: all good\u001b[0m';

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string[] }> {
  let out = '';
  const err: string[] = [];
  const code = await main(argv, { out: (t) => (out += t), err: (t) => err.push(t) });
  return { code, out, err };
}

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'tensorpeft-cli-esc-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('CLI error rendering', () => {
  it('D15: a tensor name with a newline and ANSI escapes prints one escaped line', async () => {
    const dir = path.join(tmp, 'evil');
    await mkdir(dir);
    await writeFile(path.join(dir, 'adapter_config.json'), JSON.stringify({ peft_type: 'LORA', r: 2, lora_alpha: 2, target_modules: ['query'] }));
    const tensors = new Map([
      ['base_model.model.bert.encoder.layer.0.attention.self.query.lora_A.weight', { shape: [2, 4], data: new Float32Array(8) }],
      ['base_model.model.bert.encoder.layer.0.attention.self.query.lora_B.weight', { shape: [4, 2], data: new Float32Array(8) }],
      [EVIL, { shape: [1], data: new Float32Array(1) }],
    ]);
    await writeFile(path.join(dir, 'adapter_model.safetensors'), writeSafetensors(tensors));
    const r = await run('inspect', dir);
    expect(r.code).toBe(1);
    expect(r.err).toHaveLength(1);
    const line = r.err[0]!.replace(/\n$/, '');
    expect(line).toMatch(/^tensorpeft inspect: AdapterFormatError: /);
    expect(line).not.toMatch(CONTROL);
    expect(line).not.toContain('\n');
    expect(line).toContain('base_model.model.x\\n\\u001b[31mFAKE: all good\\u001b[0m');
  });

  it('D15: a file argument with control characters is escaped in a file-system error', async () => {
    const r = await run('inspect', path.join(tmp, 'no\nsuch\u001b[2J'));
    expect(r.code).toBe(1);
    expect(r.err.join('')).not.toMatch(CONTROL);
    expect(r.err.join('')).toContain('no\\nsuch\\u001b[2J');
  });

  it('D15: an unknown command name is escaped', async () => {
    const r = await run('\u001b[2Jwipe');
    expect(r.code).toBe(2);
    expect(r.err.join('')).not.toMatch(CONTROL);
  });
});
