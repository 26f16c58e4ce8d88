/**
 * `attachAdapters`: the registry on a model or pipeline, and the call hooks that pin each call
 * (and each `generate()`) to one adapter from start to end.
 */
import { PluginError } from './errors.js';
import { AdapterRegistry, VIEW, type Entry } from './registry.js';
import type { SessionLike } from './ort-feeds.js';
import type { AdapterMethods, AttachOptions, WithAdapters } from './types.js';
import { configureMixed, hasAdapterNames, mixedCall } from './mixed-feeds.js';

interface ModelLike {
  sessions: Record<string, SessionLike>;
  _call(...args: unknown[]): unknown;
  generate?(opts?: Record<string, unknown>): Promise<unknown>;
}

interface PipelineLike {
  model: ModelLike;
  _call(...args: unknown[]): unknown;
}

const REGISTRY = Symbol.for('tensorpeft.registry');
const HOOKED = Symbol.for('tensorpeft.hookedCall');

function isPlainObject(x: unknown): x is Record<string, unknown> {
  if (x === null || typeof x !== 'object') return false;
  const p = Object.getPrototypeOf(x) as unknown;
  return p === Object.prototype || p === null;
}

type Callish = ((...args: unknown[]) => unknown) & Record<PropertyKey, unknown>;

/** A callable view of `target` (a Callable whose `closure._call` is looked up on the view). */
function callableView<T extends object>(target: T, own: Record<PropertyKey, unknown>): T {
  const view = ((...args: unknown[]) => (view as unknown as { _call: (...a: unknown[]) => unknown })._call(...args)) as unknown as Callish;
  Object.setPrototypeOf(view, target);
  for (const k of Reflect.ownKeys(own)) Object.defineProperty(view, k, { value: own[k], configurable: true, writable: true });
  return view as unknown as T;
}

/**
 * Hook a model's `_call` and `generate`: every call / `generate()` runs pinned to one adapter for its
 * whole duration (all sessions, all tokens): the one active when it started, or the per-call
 * `{ adapter: name | null }` (2nd argument of `model(inputs, { adapter })`, or a key of `generate`'s options).
 */
function hookModel(model: ModelLike, reg: AdapterRegistry): (entry: Entry) => ModelLike {
  const makeView = (entry: Entry): ModelLike => callableView(model, { sessions: reg.pinnedSessions(model.sessions, entry), [VIEW]: entry });
  const holder = model as unknown as Record<symbol, unknown>;
  if (holder[HOOKED]) return makeView;
  holder[HOOKED] = true;
  const origCall = model._call;
  Object.defineProperty(model, '_call', {
    configurable: true,
    writable: true,
    value(this: ModelLike & Record<symbol, unknown>, inputs: unknown, opts?: unknown, ...rest: unknown[]) {
      // Per-row adapters (mixed-feeds.ts): the whole call pinned to the stacks of its adapters.
      if (hasAdapterNames(opts)) return mixedCall(reg, opts, inputs).then(({ entry }) => reg.pinned(entry, () => origCall.call(makeView(entry), inputs, ...rest)));
      if (hasCallOptions(opts)) {
        let entry: Entry;
        try {
          entry = callEntry(reg, opts, this[VIEW] as Entry | undefined).entry;
        } catch (e) {
          return Promise.reject(e);
        }
        return reg.pinned(entry, () => origCall.call(makeView(entry), inputs, ...rest));
      }
      if (this[VIEW]) return origCall.call(this, inputs, opts, ...rest);
      const entry = reg.currentEntry();
      return reg.pinned(entry, () => origCall.call(makeView(entry), inputs, opts, ...rest));
    },
  });
  const origGenerate = model.generate;
  if (typeof origGenerate === 'function') {
    Object.defineProperty(model, 'generate', {
      configurable: true,
      writable: true,
      value(this: ModelLike & Record<symbol, unknown>, opts: Record<string, unknown> = {}) {
        // Each row keeps its adapter for every token step.
        if (hasAdapterNames(opts)) return mixedCall(reg, opts).then(({ entry, rest }) => reg.pinned(entry, () => origGenerate.call(makeView(entry), rest)));
        if (hasCallOptions(opts)) {
          let picked: { entry: Entry; rest: Record<string, unknown> };
          try {
            picked = callEntry(reg, opts, this[VIEW] as Entry | undefined);
          } catch (e) {
            return Promise.reject(e);
          }
          return reg.pinned(picked.entry, () => origGenerate.call(makeView(picked.entry), picked.rest));
        }
        if (this[VIEW]) return origGenerate.call(this, opts);
        const entry = reg.currentEntry();
        return reg.pinned(entry, () => origGenerate.call(makeView(entry), opts));
      },
    });
  }
  return makeView;
}

function hasCallOptions(x: unknown): x is Record<string, unknown> {
  return isPlainObject(x) && ('adapter' in x || 'scale' in x);
}

/**
 * The entry a call with `{ adapter?, scale? }` runs (`adapter` absent: the one active now, or the
 * view's), and its other options. A scale gives an unregistered scaled view of that entry.
 */
function callEntry(reg: AdapterRegistry, opts: Record<string, unknown>, viewEntry: Entry | undefined): { entry: Entry; rest: Record<string, unknown> } {
  const { adapter, scale, ...rest } = opts;
  let entry = 'adapter' in opts ? reg.entryFor((adapter ?? null) as string | null) : (viewEntry ?? reg.currentEntry());
  if (scale !== undefined) entry = reg.scaledEntry(entry, scale as number);
  return { entry, rest };
}

/** Hook a pipeline's `_call`: its last argument may carry `adapter`; the whole call is pinned. */
function hookPipeline(pipe: PipelineLike, reg: AdapterRegistry, modelView: (e: Entry) => ModelLike): (entry: Entry) => PipelineLike {
  const holder = pipe as unknown as Record<symbol, unknown>;
  const origCall = (holder[HOOKED] as PipelineLike['_call'] | undefined) ?? pipe._call;
  const runPinned = (self: PipelineLike, entry: Entry, args: unknown[]): Promise<unknown> =>
    reg.pinned(entry, () => origCall.apply(Object.create(self, { model: { value: modelView(entry), configurable: true, writable: true } }), args));
  const makeView = (entry: Entry): PipelineLike =>
    callableView(pipe, {
      [VIEW]: entry,
      _call: function (this: PipelineLike, ...args: unknown[]) {
        return runPinned(this, entry, args);
      },
    });
  if (holder[HOOKED]) return makeView;
  holder[HOOKED] = origCall;
  Object.defineProperty(pipe, '_call', {
    configurable: true,
    writable: true,
    value(this: PipelineLike, ...args: unknown[]) {
      const last = args[args.length - 1];
      if (args.length >= 2 && hasAdapterNames(last)) return mixedCall(reg, last).then(({ entry, rest }) => runPinned(this, entry, [...args.slice(0, -1), rest]));
      if (args.length >= 2 && hasCallOptions(last)) {
        let picked: { entry: Entry; rest: Record<string, unknown> };
        try {
          picked = callEntry(reg, last, undefined);
        } catch (e) {
          return Promise.reject(e);
        }
        return runPinned(this, picked.entry, [...args.slice(0, -1), picked.rest]);
      }
      return runPinned(this, reg.currentEntry(), args);
    },
  });
  return makeView;
}

/**
 * Attach the adapter registry to a transformers.js model (from `AutoModel*.from_pretrained`, loaded
 * after `enableAdapters(env)`) or a pipeline (its `.model`). Adds PEFT's `load_adapter`, `set_adapter`,
 * `disable_adapters`, `enable_adapters`, `active_adapters`, `delete_adapter`, `add_weighted_adapter`,
 * and `set_adapter_scale`, `unload_adapter`, `list_adapters`, `active_adapter`, `with_adapter`,
 * `set_max_adapter_bytes`, `adapter_memory` to the object and returns it. Calls and `generate()`
 * keep one adapter from start to end; `model(inputs, { adapter })`, `model.generate({ …, adapter })`
 * and `pipe(input, { …, adapter })` pick one per call (`null`: the base model), `scale` scales its ΔW for the call.
 */
export function attachAdapters<T extends object>(target: T, opts: AttachOptions = {}): WithAdapters<T> {
  const isModel = 'sessions' in target;
  const model = (isModel ? target : (target as { model?: unknown }).model) as ModelLike | undefined;
  if (!model || (typeof model !== 'object' && typeof model !== 'function') || !('sessions' in model)) throw new PluginError('attachAdapters expects a transformers.js model or pipeline');
  const holder = model as unknown as Record<symbol, AdapterRegistry | undefined>;
  // Unrewritten twins of the sessions (AttachOptions.base_sessions), matched by session name.
  const twins = new Map(Object.entries(opts.base_sessions ?? {}).flatMap(([k, t]) => (model.sessions[k] ? [[model.sessions[k] as object, t] as const] : [])));
  const reg = holder[REGISTRY] ?? new AdapterRegistry(Object.values(model.sessions), opts, twins);
  holder[REGISTRY] = reg;
  if (opts.max_adapter_bytes !== undefined) reg.set_max_adapter_bytes(opts.max_adapter_bytes);
  configureMixed(reg, opts.mixed_batches, opts.webgpu !== undefined);
  const modelView = hookModel(model, reg);
  const view = isModel ? (modelView as unknown as (e: Entry) => T) : (hookPipeline(target as unknown as PipelineLike, reg, modelView) as unknown as (e: Entry) => T);
  const t = target as WithAdapters<T>;
  Object.defineProperties(t, {
    load_adapter: { value: reg.load_adapter.bind(reg), configurable: true },
    set_adapter: { value: reg.set_adapter.bind(reg), configurable: true },
    disable_adapters: { value: reg.disable_adapters.bind(reg), configurable: true },
    unload_adapter: { value: reg.unload_adapter.bind(reg), configurable: true },
    delete_adapter: { value: reg.delete_adapter.bind(reg), configurable: true },
    enable_adapters: { value: reg.enable_adapters.bind(reg), configurable: true },
    active_adapters: { value: reg.active_adapters.bind(reg), configurable: true },
    add_weighted_adapter: { value: reg.add_weighted_adapter.bind(reg), configurable: true },
    set_adapter_scale: { value: reg.set_adapter_scale.bind(reg), configurable: true },
    list_adapters: { value: reg.list_adapters.bind(reg), configurable: true },
    active_adapter: { get: () => reg.active_adapter, configurable: true },
    with_adapter: { value: (name: string | null) => view(reg.entryFor(name)), configurable: true },
    set_max_adapter_bytes: { value: reg.set_max_adapter_bytes.bind(reg), configurable: true },
    adapter_memory: { value: reg.adapter_memory.bind(reg), configurable: true },
  });
  return t;
}
