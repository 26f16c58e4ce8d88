/**
 * Importer for what the official TensLoRA code (ax-le/TensLoRA) saves: `<name>_tensors.pth`, a
 * `torch.save` of the adapter *modules* (no config file): one `TensLoRA_adapter` for `qkv_depth` /
 * `att_qkv_depth`, a `ParameterList` of them per layer (`qkv`, `att_qkv`) or per matrix
 * (`depth`, `att_depth`), or a list of lists (`att`: `[qkv][layer]`). The pickle is read by the
 * restricted unpickler, the module classes as inert records; from each adapter we take
 * `tensor_method`, `tensor_fac`, `scaling`, and the Tucker core and factors — those of the tltorch
 * `TuckerTensor` the forward uses (`tltorch_tensor`), else `tucker_core` / `tucker_factors`.
 *
 * The official forward adds `x @ (M · scaling)` with `M = unfold(tensor)` picked at (qkv, layer);
 * for `att` constructions `tl.unfold` orders the output as (d/H, H) with the head fastest, i.e. our
 * `head_layout: "interleaved"`. Module paths, heads and layers come from the model shape
 * (`--model` is required: the file does not name the model); q, k, v map to rows 0, 1, 2 of the
 * qkv mode as in `add_adapters_to_model`.
 */
import { AdapterFormatError, ConfigError, ShapeMismatchError } from '../../errors.js';
import { location } from '../../io/official/read.js';
import type { ImportedParts, OfficialFiles, OfficialImporter, OfficialImportOptions } from '../../io/official/types.js';
import { decodeTorchTensor, readTorchCheckpoint, type TorchCheckpoint } from '../../io/torch/checkpoint.js';
import { PyDict, PyObject, TorchTensor, type PyValue } from '../../io/torch/values.js';
import { moduleName } from '../../model/shape.js';
import type { TensorMap } from '../../tensor.js';
import { targetedModules, toPlanned } from '../common.js';
import { CONSTRUCTIONS, flagsOf, type Construction, type TensloraConfig } from './config.js';
import { coreName, factorName, tensloraLayout } from './plan.js';
import { QKV_ROW, qkvTargets } from './targets.js';

const QKV = QKV_ROW;
const ADAPTER_CLASS = 'tenslora.adapters.tenslora_adapter.TensLoRA_adapter';

function pthName(f: OfficialFiles): string | undefined {
  const names = [...f.files.keys()].filter((n) => /_tensors(_\d+)?\.pth$/.test(n));
  return names.length === 1 ? names[0] : undefined;
}

/** `obj.<name>` of a pickled nn.Module record: a parameter, a submodule, or a plain attribute. */
function attr(obj: PyValue, name: string): PyValue | undefined {
  if (!(obj instanceof PyObject) || !(obj.state instanceof PyDict)) return undefined;
  const st = obj.state;
  for (const table of ['_parameters', '_buffers', '_modules']) {
    const t = st.get(table);
    if (t instanceof PyDict) {
      const v = t.get(name);
      if (v !== undefined && v !== null) return v;
    }
  }
  return st.get(name);
}

/** Items of a pickled ParameterList / ModuleList / FactorList record, in index order. */
function listItems(obj: PyValue): PyValue[] {
  if (!(obj instanceof PyObject) || !(obj.state instanceof PyDict)) return [];
  const out: PyValue[] = [];
  for (const table of ['_parameters', '_modules']) {
    const t = obj.state.get(table);
    if (t instanceof PyDict) for (const [, v] of t.entries) if (v !== null) out.push(v);
  }
  return out;
}

interface Tucker {
  core: TorchTensor;
  factors: TorchTensor[];
  scaling: number;
  method: string;
}

function tuckerOf(adapter: PyValue, where: string, file: string): Tucker {
  if (!(adapter instanceof PyObject) || adapter.cls.qualified !== ADAPTER_CLASS) {
    throw new AdapterFormatError('expected a TensLoRA_adapter module', { file, field: where, expected: ADAPTER_CLASS, found: adapter instanceof PyObject ? adapter.cls.qualified : typeof adapter });
  }
  const method = attr(adapter, 'tensor_method');
  const fac = attr(adapter, 'tensor_fac');
  if (fac !== 'tucker') throw new ConfigError('only Tucker TensLoRA is modelled', { file, field: `${where}.tensor_fac`, expected: 'tucker', found: fac ?? 'nothing' });
  const scaling = attr(adapter, 'scaling');
  const inner = attr(adapter, 'tensor_lora_module');
  const tl = attr(inner ?? null, 'tltorch_tensor');
  let core = attr(tl ?? null, 'core');
  let factors = listItems(attr(tl ?? null, 'factors') ?? null);
  if (!(core instanceof TorchTensor) || factors.length === 0) {
    core = attr(inner ?? null, 'tucker_core');
    factors = listItems(attr(inner ?? null, 'tucker_factors') ?? null);
  }
  if (!(core instanceof TorchTensor) || factors.length === 0 || !factors.every((x) => x instanceof TorchTensor)) {
    throw new AdapterFormatError('TensLoRA adapter without a Tucker core and factors', { file, field: where, expected: 'tltorch_tensor.core/factors or tucker_core/tucker_factors', found: 'nothing' });
  }
  return { core, factors: factors as TorchTensor[], scaling: typeof scaling === 'number' ? scaling : 1, method: String(method) };
}

function importTenslora(f: OfficialFiles, opts: OfficialImportOptions): ImportedParts {
  const name = pthName(f);
  if (!name) throw new AdapterFormatError('no TensLoRA <name>_tensors.pth in the folder', { file: f.source, expected: 'one <name>_tensors.pth', found: [...f.files.keys()] });
  const file = location(f, name);
  const ckpt: TorchCheckpoint = readTorchCheckpoint(f.files.get(name)!, { file });
  const root = ckpt.root;
  const shape = opts.shape;
  if (!shape) {
    throw new ConfigError('a TensLoRA .pth does not say which model it adapts: pass the model (--model)', { file, field: 'model', expected: '--model <preset|config.json|model dir>', found: 'nothing' });
  }
  // The construction: from the first adapter found.
  const first = root instanceof PyObject && root.cls.qualified === ADAPTER_CLASS ? root : listItems(root)[0];
  const firstAdapter = first instanceof PyObject && first.cls.qualified !== ADAPTER_CLASS ? listItems(first)[0] : first;
  const construction = attr(firstAdapter ?? null, 'tensor_method');
  if (typeof construction !== 'string' || !(CONSTRUCTIONS as readonly string[]).includes(construction)) {
    throw new ConfigError('unknown TensLoRA construction', { file, field: 'tensor_method', expected: CONSTRUCTIONS, found: construction ?? 'nothing' });
  }
  const cons = construction as Construction;
  const fl = flagsOf(cons);
  const pick = (qkv: number, layer: number): { obj: PyValue; where: string } => {
    if (fl.qkv && fl.depth) return { obj: root, where: 'root' };
    if (cons === 'att') {
      const row = listItems(root)[qkv];
      return { obj: listItems(row ?? null)[layer] ?? null, where: `[${qkv}][${layer}]` };
    }
    if (fl.qkv) return { obj: listItems(root)[layer] ?? null, where: `[${layer}]` };
    return { obj: listItems(root)[qkv] ?? null, where: `[${qkv}]` };
  };

  const targets = qkvTargets(shape);
  if (!targets) throw new ConfigError('TensLoRA adapts q, k and v: the model needs all three', { file, field: 'model', expected: 'query/key/value, q_proj/k_proj/v_proj or q_lin/k_lin/v_lin modules', found: shape.defaultTargets });
  const mods = targetedModules(targets, shape).map(toPlanned);
  // Ranks from the factors' shapes; the layout (groups, keys) from the native plan code.
  const probe = tuckerOf(pick(0, 0).obj, pick(0, 0).where, file);
  const ranks = probe.factors.map((x) => x.shape[1]!);
  const dims = probe.factors.map((x) => x.shape[0]!);
  const aboveSize = ranks.some((r, i) => r > dims[i]!);
  const config: Record<string, unknown> = {
    peft_type: 'TENSLORA',
    construction: cons,
    ranks,
    scaling: probe.scaling,
    target_modules: targets,
    head_layout: 'interleaved',
    ...(aboveSize ? { ranks_above_size: true } : {}),
    ...(shape.nameOrPath ? { base_model_name_or_path: shape.nameOrPath } : {}),
  };
  const c = { ...config, ranks, ranks_above_size: aboveSize, layers_to_transform: null } as unknown as TensloraConfig;
  const layout = tensloraLayout(c, mods, shape.numHeads, shape.numLayers);
  const params: TensorMap = new Map();
  for (const g of layout.groups) {
    const m0 = g.modules[0]!;
    const q = QKV[moduleName(m0.path)]!;
    const { obj, where } = pick(q, m0.layer);
    const tk = tuckerOf(obj, where, file);
    if (tk.method !== cons) throw new ConfigError('TensLoRA adapters of one file disagree on the construction', { file, field: `${where}.tensor_method`, expected: cons, found: tk.method });
    if (tk.scaling !== probe.scaling) throw new ConfigError('TensLoRA adapters of one file disagree on the scaling', { file, field: `${where}.scaling`, expected: probe.scaling, found: tk.scaling });
    if (tk.factors.length !== g.modes.length) throw new ShapeMismatchError('TensLoRA factor count differs from the construction', { file, field: where, expected: g.modes.length, found: tk.factors.length });
    params.set(g.key(coreName), decodeTorchTensor(ckpt, tk.core, `${where}.core`, opts));
    g.modes.forEach((mode, i) => params.set(g.key(factorName(mode)), decodeTorchTensor(ckpt, tk.factors[i]!, `${where}.factors.${i}`, opts)));
  }
  const notes = [`construction ${cons}; module paths, heads and layers from the given model; head_layout "interleaved" reproduces tl.unfold`];
  if (aboveSize) notes.push(`ranks [${ranks.join(', ')}] exceed mode sizes [${dims.join(', ')}] as in the reference: ranks_above_size = true`);
  return { config, params, extras: new Map(), shape, notes };
}

export const tensloraImporter: OfficialImporter = {
  from: 'tenslora',
  source: 'ax-le/TensLoRA: <name>_tensors.pth (torch.save of the TensLoRA_adapter modules; needs --model)',
  detect: (f) => pthName(f) !== undefined && !f.files.has('adapter_config.json'),
  importFiles: importTenslora,
};
