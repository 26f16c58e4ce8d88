/**
 * Numbers in adapter_config.json are untrusted: JSON's 1e400 parses as Infinity, and a finite but
 * absurd value is as bad. Every method's schema refuses non-finite and out-of-range numbers with
 * a ConfigError naming the field (issue 15, D5).
 */
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../errors.js';
import { parseAdapterConfig } from '../io/adapter.js';
import './all.js';

// Every numeric field of every method, with a value inside its range (the test flips it to
// Infinity, -Infinity and a far-out finite value).
const FIELDS: [string, Record<string, unknown>, string][] = [
  ['LORA', { r: 4 }, 'lora_alpha'],
  ['LORA', { r: 4 }, 'r'],
  ['VERA', { r: 4 }, 'd_initial'],
  ['VERA', { r: 4 }, 'r'],
  ['LORTA', { r: 4 }, 'lora_alpha'],
  ['LORTA', { r: 4 }, 'init_scale'],
  ['LORTA', { r: 4 }, 'r'],
  ['LORETTA', { r: 8 }, 'lora_alpha'],
  ['LORETTA', { r: 8 }, 'tensor_rank'],
  ['TENSLORA', {}, 'scaling'],
  ['TENSLORA', {}, 'ranks'],
  ['TRAC', {}, 'lora_alpha'],
  ['TRAC', {}, 'r'],
  ['TRAC', {}, 'init_order_shared'],
];

function configError(text: string): ConfigError {
  try {
    parseAdapterConfig(text, 'adapter_config.json');
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error(`accepted: ${text}`);
}

describe('numeric config fields are finite and in range', () => {
  it.each(FIELDS)('D5: %s %s … = 1e400 (Infinity) is a ConfigError naming the field', (peft, base, field) => {
    const text = `{"peft_type":"${peft}",${Object.entries(base).map(([k, v]) => `"${k}":${JSON.stringify(v)},`).join('')}"${field}":1e400}`;
    expect(JSON.parse(text)[field]).toBe(Infinity);
    expect(configError(text).details.field).toBe(field);
    expect(configError(text.replace('1e400', '-1e400')).details.field).toBe(field);
  });

  it.each(FIELDS)('D5: %s %s … = 1e30 (finite, far out of range) is a ConfigError naming the field', (peft, base, field) => {
    const text = JSON.stringify({ peft_type: peft, ...base, [field]: 1e30 });
    expect(configError(text).details.field).toBe(field);
  });

  it('D5: list-valued sizes are bounded too (TRAC tensor ranks, TensLoRA ranks list, LoRETTA tensor shapes)', () => {
    expect(configError(JSON.stringify({ peft_type: 'TRAC', tensor_rank_a: [1, 1e30, 12] })).details.field).toBe('tensor_rank_a');
    expect(configError(JSON.stringify({ peft_type: 'TENSLORA', construction: 'att', ranks: [4, 4, 1e30] })).details.field).toBe('ranks.2');
    expect(configError(JSON.stringify({ peft_type: 'LORETTA', r: 8, tensor_shape_a: [1e30, 8] })).details.field).toBe('tensor_shape_a');
  });

  it('accepts the documented defaults and ordinary values', () => {
    for (const peft of ['LORA', 'VERA', 'LORTA', 'LORETTA', 'TENSLORA', 'TRAC']) {
      expect(parseAdapterConfig(JSON.stringify({ peft_type: peft })).config.peft_type).toBe(peft);
    }
    expect(parseAdapterConfig('{"peft_type":"LORA","r":256,"lora_alpha":512}').config.lora_alpha).toBe(512);
    expect(parseAdapterConfig('{"peft_type":"TENSLORA","scaling":-2.5}').config.scaling).toBe(-2.5);
  });
});
