/**
 * Activation dtypes of the rewritten graph. On fp16 graphs (`model_fp16.onnx`, `model_q4f16.onnx`)
 * the side branch runs in fp16, so its inputs (`tensorpeft.<path>.A|B`, head overrides, merge-mode
 * weights) are declared float16, while the registry materializes adapters in float32. The session's
 * `run` is wrapped once (`castFeedsToInputTypes`): a float32 CPU tensor fed to a float16 input is
 * converted (round to nearest even, core's converter) — once per adapter feeds object, when the
 * feed pool first takes it (feed-pool.ts), so runs pass fp16 tensors without a per-run copy.
 */
import { f16BitsToF32Bits, f32BitsToF16Bits } from '@tensorpeft/core';
import type onnxProto from 'onnx-proto';
import { PluginError } from './errors.js';
import { isExternal, readExternalBytes } from './external-data.js';
import { isPrepared, withFeedPrep } from './feed-pool.js';

type TensorProto = onnxProto.onnx.ITensorProto;

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 → IEEE half bits (round to nearest, ties to even). */
export function toHalfBits(src: Float32Array): Uint16Array {
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) {
    f32[0] = src[i]!;
    out[i] = f32BitsToF16Bits(u32[0]!);
  }
  return out;
}

/** IEEE half bits → float32 (exact). */
export function fromHalfBits(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < src.length; i++) bits[i] = f16BitsToF32Bits(src[i]!);
  return out;
}

/** The values of an fp16 initializer (inline `raw_data`/`int32_data`, or external data) as float32. */
export function halfInitToFloats(t: TensorProto, external: ReadonlyMap<string, Uint8Array> | undefined): Float32Array {
  let raw: Uint8Array | undefined;
  if (isExternal(t)) {
    if (!external) throw new PluginError(`merge mode needs the base weight ${t.name}, which is ONNX external data: pass its file (external) to rewriteModel`);
    raw = readExternalBytes(t, external);
  } else if (t.rawData && t.rawData.length > 0) {
    raw = new Uint8Array(t.rawData.length);
    raw.set(t.rawData);
  }
  // ONNX stores fp16 values without raw_data as one half per int32_data entry (low 16 bits).
  const half = raw ? new Uint16Array(raw.buffer, raw.byteOffset, raw.byteLength / 2) : Uint16Array.from(t.int32Data ?? [], (v) => Number(v) & 0xffff);
  return fromHalfBits(half);
}

interface OrtTensorLike {
  type: string;
  data: unknown;
  dims: readonly number[];
  location?: string;
}

type Run = (feeds: Record<string, unknown>, ...rest: unknown[]) => Promise<Record<string, unknown>>;

/**
 * `run` with float32 tensors converted for the inputs `session` declares float16 (only names
 * starting with `prefix`: the plugin's own inputs). `make` builds an fp16 tensor of the same ORT
 * build. GPU-resident float32 tensors cannot be converted here: a PluginError says so.
 *
 * The conversion happens when a feeds object is built, not per run (issue 16): the returned run
 * carries `prepareFeeds` (feed-pool.ts), which the registry's feed pool applies once to each adapter
 * feeds object, and feeds objects the pool made pass straight through — no per-run copy of the
 * feeds or loop over the modules. Feeds from anywhere else are converted per run as before (a copy
 * with each converted tensor cached by identity).
 */
export function castFeedsToInputTypes(
  session: { inputMetadata?: ReadonlyArray<{ name: string; type?: string }> },
  run: Run,
  prefix: string,
  make: (bits: Uint16Array, dims: readonly number[]) => unknown,
): Run {
  const half = [...new Set((session.inputMetadata ?? []).filter((m) => m.name.startsWith(prefix) && m.type === 'float16').map((m) => m.name))];
  if (half.length === 0) return run;
  const cache = new WeakMap<object, unknown>();
  const toHalf = (name: string, t: OrtTensorLike): unknown => {
    let h = cache.get(t);
    if (h === undefined) {
      if (t.location !== undefined && t.location !== 'cpu') throw new PluginError(`input ${name} is float16 in this model (an fp16 graph): a GPU-resident float32 tensor cannot be converted here; GPU-fed adapters on fp16 graphs need a backend giving float16 results (kernels-wgsl materializeToGpu dtype 'float16'), or CPU feeds`);
      h = make(toHalfBits(t.data as Float32Array), t.dims);
      cache.set(t, h);
    }
    return h;
  };
  /** `feeds` with its float32 tensors of float16 inputs converted (the same object when none is). */
  const convert = (feeds: Record<string, unknown>): Record<string, unknown> => {
    let out: Record<string, unknown> | undefined;
    for (const name of half) {
      const t = feeds[name] as OrtTensorLike | undefined;
      if (!t || t.type !== 'float32') continue;
      out ??= { ...feeds };
      out[name] = toHalf(name, t);
    }
    return out ?? feeds;
  };
  // async: a refused feed rejects the run's promise, as onnxruntime's own input errors do.
  const wrapped: Run = async (feeds, ...rest) => run(isPrepared(feeds) ? feeds : convert(feeds), ...rest);
  return withFeedPrep(wrapped, convert);
}
