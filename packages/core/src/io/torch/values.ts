/**
 * The Python values a restricted unpickle produces, as plain inert JS data. Nothing here can run
 * code: a "class" is only a name, an "object" is a record of that name with its arguments and state.
 */

/** A `module.name` global the allowlist admitted. */
export class PyGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
  get qualified(): string {
    return `${this.module}.${this.name}`;
  }
}

export class PyTuple {
  constructor(readonly items: PyValue[]) {}
}

/** A Python set / frozenset (kept as its items; never used as a container of tensors). */
export class PySet {
  constructor(readonly items: PyValue[]) {}
}

/**
 * A dict (or OrderedDict): insertion-ordered entries. Keys are compared by value for primitives
 * (str, int, bool, None); other keys are kept but never looked up.
 */
export class PyDict {
  readonly entries: [PyValue, PyValue][] = [];
  private readonly index = new Map<string, number>();
  /** State set on the dict object itself by BUILD (e.g. a state dict's `_metadata`). */
  attrs: PyValue = null;

  private static keyOf(k: PyValue): string | undefined {
    if (typeof k === 'string') return `s:${k}`;
    if (typeof k === 'number' || typeof k === 'bigint') return `n:${String(k)}`;
    if (typeof k === 'boolean') return `n:${k ? 1 : 0}`;
    if (k === null) return 'none';
    return undefined;
  }

  set(k: PyValue, v: PyValue): void {
    const key = PyDict.keyOf(k);
    const at = key === undefined ? undefined : this.index.get(key);
    if (at !== undefined) {
      this.entries[at]![1] = v;
      return;
    }
    if (key !== undefined) this.index.set(key, this.entries.length);
    this.entries.push([k, v]);
  }

  get(k: string | number): PyValue | undefined {
    const at = this.index.get(PyDict.keyOf(k)!);
    return at === undefined ? undefined : this.entries[at]![1];
  }

  get size(): number {
    return this.entries.length;
  }
}

/**
 * An instance of an allowlisted class (a torch.nn module, a tltorch factorized tensor, a TensLoRA
 * module): the class name, the constructor arguments the pickle gave, and the state BUILD set.
 * Read as data only; the class is never instantiated.
 */
export class PyObject {
  state: PyValue = null;
  constructor(
    readonly cls: PyGlobal,
    readonly args: PyValue[],
  ) {}
}

/** Element types of torch storages this reader can decode. */
export type TorchDtype = 'float32' | 'float16' | 'bfloat16' | 'float64' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';

export const TORCH_ITEMSIZE: Record<TorchDtype, number> = {
  float32: 4,
  float16: 2,
  bfloat16: 2,
  float64: 8,
  int64: 8,
  int32: 4,
  int16: 2,
  int8: 1,
  uint8: 1,
  bool: 1,
};

/** A storage reference from a persistent id: `('storage', <Type>Storage, key, location, numel)`. */
export class TorchStorage {
  constructor(
    readonly dtype: TorchDtype,
    /** Record name under `<archive>/data/`. */
    readonly key: string,
    /** Elements of `dtype` the storage holds. */
    readonly numel: number,
  ) {}
}

/** A tensor view over a storage (what `torch._utils._rebuild_tensor_v2` describes). */
export class TorchTensor {
  /** Set for `nn.Parameter`s (informative). */
  parameter = false;
  constructor(
    readonly storage: TorchStorage,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {}
}

export type PyValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PyValue[]
  | PyTuple
  | PySet
  | PyDict
  | PyGlobal
  | PyObject
  | TorchStorage
  | TorchTensor;
