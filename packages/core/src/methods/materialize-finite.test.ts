/**
 * Finite stored values can still overflow float32 once multiplied (TT/CP cores, s·B′A′ᵀ): an
 * accepted adapter must never hand NaN/Inf updates to a model. materialize refuses with
 * NonFiniteError naming the module (found by the fuzz campaign of issue 15: a LoRETTA file with a
 * 3e38 core value).
 */
import { describe, expect, it } from 'vitest';
import { JsBackend } from '../backend/js.js';
import { NonFiniteError } from '../errors.js';
import { createAdapter, materializeAdapter } from '../io/adapter.js';
import { buildShape } from '../model/architectures.js';
import './all.js';

const shape = buildShape('bert', { hiddenSize: 32, numLayers: 2, numHeads: 4, numKvHeads: 4, intermediateSize: 64 });

async function refusal(method: string, scale: (key: string) => number): Promise<unknown> {
  const a = createAdapter({ method, shape, nonzero: true, seed: 3 });
  for (const [k, t] of a.params) {
    const f = scale(k);
    for (let i = 0; i < t.data.length; i++) t.data[i] = t.data[i]! * f;
  }
  try {
    const ups = await materializeAdapter(a, new JsBackend());
    return ups.every((u) => u.A.every(Number.isFinite) && u.B.every(Number.isFinite)) ? 'finite updates' : 'non-finite updates';
  } catch (e) {
    return e;
  }
}

describe('materialized updates are finite and representable', () => {
  it('LoRETTA cores of 1e12 (finite) whose TT product overflows float32 are a NonFiniteError naming the module', async () => {
    const e = await refusal('loretta', () => 1e12);
    expect(e).toBeInstanceOf(NonFiniteError);
    expect((e as NonFiniteError).details.field).toMatch(/^bert\.encoder\.layer\.0\./);
  });

  it('LoRA factors whose ΔW = s·B′A′ᵀ would overflow float32 are refused; large but safe ones pass', async () => {
    expect(await refusal('lora', () => 1e21)).toBeInstanceOf(NonFiniteError);
    expect(await refusal('lora', () => 1e6)).toBe('finite updates');
  });
});
