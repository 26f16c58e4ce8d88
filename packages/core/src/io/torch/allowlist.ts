/**
 * The globals a checkpoint pickle may name — the same promise as `torch.load(weights_only=True)`
 * (torch/_weights_only_unpickler.py): tensor and storage rebuilders, storage types, dtypes and
 * containers, plus, for TensLoRA's pickled modules, a closed list of torch.nn / tltorch / TensLoRA
 * classes that are read as inert records (name + arguments + state) and never instantiated.
 * Anything else is refused by name before it is used.
 */
import { AdapterFormatError } from '../../errors.js';
import { PyDict, PyGlobal, PyObject, PySet, PyTuple, TorchStorage, TorchTensor, type PyValue, type TorchDtype } from './values.js';

/** `torch.<X>Storage` classes named in persistent ids, by element type. */
export const STORAGE_TYPES: Record<string, TorchDtype> = {
  FloatStorage: 'float32',
  HalfStorage: 'float16',
  BFloat16Storage: 'bfloat16',
  DoubleStorage: 'float64',
  LongStorage: 'int64',
  IntStorage: 'int32',
  ShortStorage: 'int16',
  CharStorage: 'int8',
  ByteStorage: 'uint8',
  BoolStorage: 'bool',
  UntypedStorage: 'uint8',
};

/** `torch.<dtype>` globals (appear in `_rebuild_tensor_v3` and metadata). */
const DTYPES = ['float32', 'float', 'float16', 'half', 'bfloat16', 'float64', 'double', 'int64', 'long', 'int32', 'int', 'int16', 'int8', 'uint8', 'bool'];

/** Classes read as records (module objects of TensLoRA's `*_tensors.pth` and what they hold). */
export const RECORD_CLASSES = new Set<string>([
  'torch.nn.modules.container.ParameterList',
  'torch.nn.modules.container.ParameterDict',
  'torch.nn.modules.container.ModuleList',
  'torch.nn.modules.container.ModuleDict',
  'torch.nn.modules.container.Sequential',
  'torch.nn.modules.dropout.Dropout',
  'torch.nn.modules.linear.Identity',
  'torch.nn.modules.linear.Linear',
  'torch.nn.parameter.Parameter',
  'tltorch.factorized_tensors.factorized_tensors.TuckerTensor',
  'tltorch.factorized_tensors.factorized_tensors.CPTensor',
  'tltorch.factorized_tensors.factorized_tensors.TTTensor',
  'tltorch.factorized_tensors.factorized_tensors.DenseTensor',
  'tltorch.utils.parameter_list.FactorList',
  'tltorch.tensor_hooks._tensor_dropout.TensorDropout',
  'tenslora.adapters.tenslora_adapter.TensLoRA_adapter',
  'tenslora.tensors_manipulator.AttTensorLoRA',
  'tenslora.tensors_manipulator.QKVTensorLoRA',
  'tenslora.tensors_manipulator.DepthTensorLoRA',
  'tenslora.tensors_manipulator.AttQKVTensorLoRA',
  'tenslora.tensors_manipulator.AttDepthTensorLoRA',
  'tenslora.tensors_manipulator.QKVDepthTensorLoRA',
  'tenslora.tensors_manipulator.AttQKVDepthTensorLoRA',
]);

type Callable = (args: PyValue[], where: string) => PyValue;

const bad = (msg: string, where: string, found: unknown): AdapterFormatError => new AdapterFormatError(msg, { field: where, found });

/** A non-negative safe integer from a pickled int (bool, number or bigint). */
export function toIndex(v: PyValue, where: string, max = Number.MAX_SAFE_INTEGER): number {
  const n = typeof v === 'bigint' ? (v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= 0n ? Number(v) : -1) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0 || n > max) {
    throw bad('expected a non-negative integer', where, typeof v === 'bigint' ? v.toString() : describe(v));
  }
  return n;
}

/** Items of a tuple or list. */
export function seq(v: PyValue, where: string): PyValue[] {
  if (v instanceof PyTuple) return v.items;
  if (Array.isArray(v)) return v;
  throw bad('expected a tuple or list', where, describe(v));
}

/** A short description of a value for error messages (never its full contents). */
export function describe(v: PyValue | undefined): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'None';
  if (v instanceof PyGlobal) return `global ${v.qualified}`;
  if (v instanceof PyObject) return `${v.cls.qualified} object`;
  if (v instanceof PyTuple) return `tuple of ${v.items.length}`;
  if (Array.isArray(v)) return `list of ${v.length}`;
  if (v instanceof PyDict) return `dict of ${v.size}`;
  if (v instanceof PySet) return `set of ${v.items.length}`;
  if (v instanceof TorchTensor) return `tensor [${v.shape.join(', ')}]`;
  if (v instanceof TorchStorage) return `storage ${v.key}`;
  if (v instanceof Uint8Array) return `bytes of ${v.length}`;
  if (typeof v === 'string') return v.length > 80 ? `"${v.slice(0, 77)}..."` : JSON.stringify(v);
  return String(v);
}

function rebuildTensor(args: PyValue[], where: string): TorchTensor {
  if (args.length < 4) throw bad('_rebuild_tensor needs (storage, offset, size, stride, …)', where, `${args.length} arguments`);
  const [storage, offset, size, stride] = args;
  if (!(storage instanceof TorchStorage)) throw bad('tensor storage is not a persistent storage reference', where, describe(storage));
  const shape = seq(size!, `${where}.size`).map((d, i) => toIndex(d, `${where}.size[${i}]`));
  const strides = seq(stride!, `${where}.stride`).map((d, i) => toIndex(d, `${where}.stride[${i}]`));
  if (shape.length !== strides.length) throw bad('tensor size and stride differ in length', where, { size: shape, stride: strides });
  return new TorchTensor(storage, toIndex(offset!, `${where}.offset`), shape, strides);
}

function asParameter(t: PyValue, where: string): TorchTensor {
  if (!(t instanceof TorchTensor)) throw bad('parameter data is not a tensor', where, describe(t));
  t.parameter = true;
  return t;
}

const CALLABLES: Record<string, Callable> = {
  'collections.OrderedDict': (args, where) => {
    const d = new PyDict();
    if (args.length > 0 && args[0] !== null) {
      for (const [i, pair] of seq(args[0]!, where).entries()) {
        const kv = seq(pair, `${where}[${i}]`);
        if (kv.length !== 2) throw bad('OrderedDict items must be pairs', where, describe(pair));
        d.set(kv[0]!, kv[1]!);
      }
    }
    return d;
  },
  'builtins.set': (args, where) => new PySet(args.length ? [...seq(args[0]!, where)] : []),
  'builtins.frozenset': (args, where) => new PySet(args.length ? [...seq(args[0]!, where)] : []),
  'torch._utils._rebuild_tensor_v2': rebuildTensor,
  'torch._utils._rebuild_tensor': rebuildTensor,
  'torch._utils._rebuild_parameter': (args, where) => asParameter(args[0] ?? null, where),
  'torch._utils._rebuild_parameter_with_state': (args, where) => asParameter(args[0] ?? null, where),
  'torch._tensor._rebuild_from_type_v2': (args, where) => {
    // (func, new_type, func_args, state): only the tensor rebuilders, into Tensor or Parameter.
    const [fn, type, fargs] = args;
    if (!(fn instanceof PyGlobal) || !(type instanceof PyGlobal)) throw bad('_rebuild_from_type_v2 needs (function, type, args, state)', where, describe(fn));
    if (type.qualified !== 'torch.nn.parameter.Parameter' && type.qualified !== 'torch.Tensor') {
      throw bad('_rebuild_from_type_v2 into an unsupported tensor type', where, type.qualified);
    }
    const inner = callGlobal(fn, seq(fargs ?? null, `${where}.args`), where);
    if (type.qualified === 'torch.nn.parameter.Parameter') asParameter(inner, where);
    return inner;
  },
  'torch.Size': (args, where) => new PyTuple(args.length ? [...seq(args[0]!, where)] : []),
  'torch.device': (args) => (typeof args[0] === 'string' ? args[0] : 'cpu'),
  'copyreg._reconstructor': (args, where) => {
    // Protocol 0/1 form of object.__reduce_ex__: (cls, base, state) with base = object.
    const [cls, base] = args;
    if (!(cls instanceof PyGlobal) || !RECORD_CLASSES.has(cls.qualified)) throw bad('_reconstructor of a class outside the allowlist', where, describe(cls));
    if (!(base instanceof PyGlobal) || base.qualified !== 'builtins.object') throw bad('_reconstructor base must be object', where, describe(base));
    return new PyObject(cls, []);
  },
};

/** Whether `module.name` may appear in a pickle (checked when the GLOBAL opcode is read). */
export function isAllowedGlobal(module: string, name: string): boolean {
  const q = `${module}.${name}`;
  if (q in CALLABLES || RECORD_CLASSES.has(q)) return true;
  if (q === 'builtins.object' || q === 'torch.Tensor') return true;
  if (module === 'torch' && (name in STORAGE_TYPES || DTYPES.includes(name))) return true;
  if (module === 'torch.storage' && name === 'UntypedStorage') return true;
  return false;
}

/** REDUCE / NEWOBJ: an allowlisted callable computes its (inert) result; a record class makes a record. */
export function callGlobal(fn: PyValue, args: PyValue[], where: string): PyValue {
  if (!(fn instanceof PyGlobal)) throw bad('REDUCE on a value that is not a global', where, describe(fn));
  const call = CALLABLES[fn.qualified];
  if (call) return call(args, where);
  if (RECORD_CLASSES.has(fn.qualified)) return new PyObject(fn, args);
  throw bad('this global cannot be called', where, fn.qualified);
}
