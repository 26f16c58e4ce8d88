/**
 * LoRA (HF PEFT): per module `lora_A [r, n]`, `lora_B [m, r]`; A′ = lora_Aᵀ, B′ = lora_B,
 * s = alpha / r (or alpha / √r with rsLoRA). Init: lora_A ~ U(±1/√n) (kaiming-uniform, a = √5),
 * lora_B = 0.
 */
import { ShapeMismatchError } from '../../errors.js';
import { moduleName, splitLayerPath, type LinearModule, type ModelShape } from '../../model/shape.js';
import { maxOf } from '../../util/reduce.js';
import { data, moduleKey, targetedModules, toPlanned } from '../common.js';
import type { AdapterMethod, ParamPlan, ParamSpec } from '../types.js';
import { loraConfigSchema, type LoraConfig } from './config.js';

export function loraScale(c: LoraConfig): number {
  return c.use_rslora ? c.lora_alpha / Math.sqrt(c.r) : c.lora_alpha / c.r;
}

export const lora: AdapterMethod<LoraConfig> = {
  peftType: 'LORA',
  cliName: 'lora',
  description: 'LoRA (Hu et al. 2021), byte-compatible with HF PEFT',
  schema: loraConfigSchema,

  plan(c: LoraConfig, shape: ModelShape): ParamPlan {
    const mods = targetedModules(c.target_modules, shape, c.layers_to_transform);
    const params: ParamSpec[] = [];
    for (const m of mods) {
      params.push({
        key: moduleKey(m.path, 'lora_A.weight'),
        shape: [c.r, m.in],
        kind: 'trainable',
        module: m.path,
        init: { dist: 'uniform', bound: 1 / Math.sqrt(m.in) },
      });
      params.push({
        key: moduleKey(m.path, 'lora_B.weight'),
        shape: [m.out, c.r],
        kind: 'trainable',
        module: m.path,
        init: { dist: 'zeros' },
        zeroInit: true,
      });
    }
    return { peftType: 'LORA', rank: c.r, modules: mods.map(toPlanned), params, numHeads: shape.numHeads, numLayers: shape.numLayers };
  },

  jobs(c, plan, params) {
    const s = loraScale(c);
    return plan.modules.map((m) => ({
      path: m.path,
      n: m.n,
      m: m.m,
      rho: c.r,
      s,
      a: { kind: 'dense', src: data(params, moduleKey(m.path, 'lora_A.weight')), rows: c.r, cols: m.n, takeRows: c.r, takeCols: m.n, transpose: true },
      b: { kind: 'dense', src: data(params, moduleKey(m.path, 'lora_B.weight')), rows: m.m, cols: c.r, takeRows: m.m, takeCols: c.r },
    }));
  },

  inferShape(c, shapes) {
    // Every `<prefix>.<path>.lora_A.weight` [r, n] with its `lora_B.weight` [m, r] is a module.
    const modules: LinearModule[] = [];
    for (const [key, shp] of shapes) {
      const mA = /^base_model\.model\.(.+)\.lora_A(?:\.[^.]+)?\.weight$/.exec(key);
      if (!mA) continue;
      const path = mA[1]!;
      const bKey = key.replace('.lora_A', '.lora_B');
      const bShape = shapes.get(bKey);
      if (!bShape) throw new ShapeMismatchError('lora_A has no matching lora_B', { tensor: bKey, expected: `[m, ${c.r}]`, found: 'nothing' });
      if (shp.length !== 2 || bShape.length !== 2) {
        throw new ShapeMismatchError('LoRA factors must be 2-D', { tensor: key, expected: '[r, n] and [m, r]', found: [shp, bShape] });
      }
      const { layer, type } = splitLayerPath(path);
      modules.push({ path, type, layer, in: shp[1]!, out: bShape[0]!, fanInFanOut: c.fan_in_fan_out ?? false });
    }
    if (modules.length === 0) return undefined;
    // safetensors keys are sorted as strings (layer.10 before layer.2): restore model order.
    modules.sort((x, y) => x.layer - y.layer);
    const layers = maxOf(modules.map((m) => m.layer)) + 1;
    return {
      modelType: 'unknown',
      hiddenSize: modules[0]!.in,
      numLayers: layers,
      numHeads: 1,
      numKvHeads: 1,
      intermediateSize: maxOf(modules.map((m) => Math.max(m.in, m.out))),
      modules,
      defaultTargets: [...new Set(modules.map((m) => moduleName(m.path)))],
    };
  },
};
