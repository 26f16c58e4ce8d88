/**
 * `verify`: the same fixed inputs through
 * 1. the untouched base model (transformers.js as shipped),
 * 2. the plugin with adapters disabled (must equal 1 exactly: `base_max_abs_diff`),
 * 3. the plugin with the adapter active, and
 * 4. an independently built model whose fp32 ONNX initializers were merged offline
 *    (`W0 + ΔW` in each weight's own layout, plus `modules_to_save`): `max_abs_diff` = |3 − 4|.
 * Text models (encoders and decoders) get tokenized texts; image models (ViT) get pixel values from
 * the model's own image processor on a few synthetic images. The model is read from a local folder.
 * Models with ONNX external data (`onnx/model.onnx` + `onnx/model.onnx_data`, config.json's
 * `transformers.js_config.use_external_data_format`) are checked too: the side files are read once
 * from the model folder for the offline merge and served from those bytes to the merged model's load.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { f16BitsToF32Bits, loadAdapter, materializeAdapter, type Adapter, type Backend } from '@tensorpeft/core';
import onnxProto from 'onnx-proto';
import { PluginError } from './errors.js';
import { DATA_FILE_RE, externalLocations } from './external-data.js';
import { mergeModel } from './merge.js';
import { toleranceFor, type VerifyDtype } from './tolerance.js';
import { isEncoderDecoderFolder, verifyEncoderDecoder } from './verify-encoder-decoder.js';
import { fileExists, loadPlugged, runOnce, serveFromBytes, useLocalFolder } from './verify-models.js';

export interface VerifyOptions {
  /** Local model folder (config.json, tokenizer files, onnx/model.onnx[, onnx/model_quantized.onnx]). */
  model: string;
  /** Adapter folder/URL or a loaded Adapter. */
  adapter: string | Adapter;
  /**
   * Model file the plugin runs on (default fp32): transformers.js' dtypes (`model_fp16.onnx`,
   * `model_quantized.onnx`, `model_int8.onnx`, …). The merged reference is always built from fp32.
   */
  dtype?: VerifyDtype;
  /** Texts for a text model (default `DEFAULT_TEXTS`); refused for an image model. */
  texts?: string[];
  /**
   * Images for an image model (default: three synthetic images of different sizes, see
   * `syntheticImages`), raw interleaved pixels as transformers.js' `RawImage` takes them;
   * refused for a text model.
   */
  images?: VerifyImage[];
  backend?: Backend;
  /** Plugin mode (default `branch`; `merge` needs fp32). */
  mode?: 'branch' | 'merge';
  /**
   * transformers.js `device` for every model of the check (default: transformers.js' own choice).
   * Pass `'auto'` when onnxruntime-web is the runtime (`globalThis[Symbol.for('onnxruntime')]`).
   */
  device?: string;
  /**
   * onnxruntime's graph optimization level for every model of the check (default: transformers.js'
   * own, i.e. onnxruntime's `all`). Disabled must equal base exactly at every level for the generated
   * architectures (the rewrite keeps the chains onnxruntime fuses, e.g. SkipLayerNormalization with
   * its bias, as in the base). A non-zero `base_max_abs_diff` at the default level that vanishes at
   * `'basic'` would point at a fusion the rewritten graph of some other export misses, not at the
   * adapter math; `'basic'` compares the graphs without extended fusions.
   */
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /** Branch mode, fp16 graphs: the side branches' precision (default: from `device`, see `EnableOptions.branchDtype`). */
  branchDtype?: 'activation' | 'float32';
}

/** Raw pixels, row-major and channel-interleaved (`RawImage`'s layout). */
export interface VerifyImage {
  data: Uint8ClampedArray | Uint8Array;
  width: number;
  height: number;
  channels: 1 | 2 | 3 | 4;
}

export interface VerifyResult {
  max_abs_diff: number;
  base_max_abs_diff: number;
  /** |adapter − base|: how much the adapter changes the outputs (0 would make the check vacuous). */
  adapter_effect: number;
  outputs: string[];
  dtype: VerifyDtype;
  /**
   * The bound `max_abs_diff` should stay within for this dtype (`toleranceFor`, derived in
   * tolerance.ts): 3 · `dtype_error` + 1e-4 · max(1, `reference_max_abs`) + 4 · u · `adapter_effect`
   * (u = 2⁻¹¹ on fp16 graphs, 2⁻²⁴ otherwise).
   */
  tolerance: number;
  /**
   * max |base on this dtype − base fp32| on the same inputs (unmasked positions; 0 for fp32). For an
   * adapter with `modules_to_save`, both sides carry the adapter's heads (ΔW scaled by 0).
   */
  dtype_error: number;
  /** Largest |output| of the merged fp32 reference (the scale of `tolerance`). */
  reference_max_abs: number;
  mode: 'branch' | 'merge';
  /** Present when `graphOptimizationLevel` was given. */
  graph_optimization_level?: 'disabled' | 'basic' | 'extended' | 'all';
  peft_type: string;
  modules: number;
  modules_to_save: string[];
  /** What the model was fed: tokenized texts, preprocessed images, or audio features (encoder–decoder speech models). */
  input_kind: 'text' | 'image' | 'audio';
  /** Rows of the batch (= `texts` or `images`). */
  inputs: number;
  /** Texts fed (0 for an image model). */
  texts: number;
  /** Images fed (0 for a text model). */
  images: number;
  /**
   * Encoder–decoder models (verify-encoder-decoder.ts): greedy `generate()` tokens with the KV cache
   * — the plugin's with the adapter (`tokens`) against the merged model's, and disabled against the base.
   */
  generate?: { tokens: number[]; merged_tokens: number[]; base_tokens: number[]; disabled_tokens: number[]; match: boolean; disabled_match: boolean };
}

export const DEFAULT_TEXTS = ['i feel happy today', 'this is a longer sentence that the model reads to check the adapter.', 'no'];

/**
 * Deterministic synthetic images for image models: a colour gradient, a checkerboard and a
 * grayscale pattern, of three sizes other than each other's and (for the generated tiny and
 * base ViTs) the model's, so the processor's resize (up and down), channel conversion (1 → 3),
 * rescale and normalize all take part, as they would with real photos. Generated in code: no
 * files, no network, the same bytes on every run.
 */
export function syntheticImages(): VerifyImage[] {
  const gradient = (w: number, h: number): VerifyImage => {
    const data = new Uint8ClampedArray(w * h * 3);
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const i = (y * w + x) * 3;
        data[i] = Math.round((255 * x) / (w - 1));
        data[i + 1] = Math.round((255 * y) / (h - 1));
        data[i + 2] = Math.round((255 * (x + y)) / (w + h - 2));
      }
    return { data, width: w, height: h, channels: 3 };
  };
  const checker = (w: number, h: number, cell: number): VerifyImage => {
    const data = new Uint8ClampedArray(w * h * 3);
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const on = (Math.floor(x / cell) + Math.floor(y / cell)) % 2 === 1;
        data.set(on ? [230, 40, 90] : [20, 200, 160], (y * w + x) * 3);
      }
    return { data, width: w, height: h, channels: 3 };
  };
  const gray = (w: number, h: number): VerifyImage => {
    const data = new Uint8ClampedArray(w * h);
    // Diagonal stripes modulated by a ramp: neither flat nor periodic in the patch grid.
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data[y * w + x] = ((x * 7 + y * 13) % 64) * 2 + Math.round((127 * y) / (h - 1));
    return { data, width: w, height: h, channels: 1 };
  };
  return [gradient(48, 40), checker(24, 24, 3), gray(57, 33)];
}

/**
 * The checked locations of the fp32 model's external initializers (empty for an inline model).
 * They come with the model: externalLocations refuses `..`, absolute paths and the like (before any
 * model runs), and readSideFiles checks the resolved path lies inside the model folder.
 */
function sideLocations(fp32: Uint8Array): string[] {
  return externalLocations(onnxProto.onnx.ModelProto.decode(fp32).graph ?? {});
}

const sidePath = (dir: string, location: string): string => path.resolve(dir, 'onnx', location.replace(/\\/g, '/'));

/** The side files by location, read from the model's `onnx/` folder. */
async function readSideFiles(dir: string, locations: readonly string[]): Promise<Map<string, Uint8Array>> {
  const files = new Map<string, Uint8Array>();
  for (const location of locations) {
    const file = sidePath(dir, location);
    const rel = path.relative(dir, file);
    if (rel === '' || rel.split(path.sep)[0] === '..' || path.isAbsolute(rel)) throw new PluginError(`verify: external data location ${JSON.stringify(location)} lies outside ${dir}`);
    files.set(location, new Uint8Array(await readFile(file)));
  }
  return files;
}

type Outputs = Record<string, { data: ArrayLike<number> | ArrayLike<bigint>; type: string; dims?: readonly number[] }>;

/** Which elements of output `name` to compare (all when undefined). */
type Valid = (name: string, index: number) => boolean;

/**
 * Elements at positions the attention mask excludes are left out: their values are undefined (a
 * query whose keys are all masked, e.g. a left-padded decoder row, softmaxes over equal fills —
 * uniform in fp32, but −1e4 in fp16 is coarse enough that the row picks other keys), and no caller
 * reads them. Outputs [batch, seq, …] matching the mask's [batch, seq] are filtered; others are whole.
 */
function unmaskedPositions(inputs: Record<string, unknown>, out: Outputs): Valid | undefined {
  const mask = inputs['attention_mask'] as { data: ArrayLike<bigint | number>; dims: readonly number[] } | undefined;
  if (!mask || mask.dims.length !== 2) return undefined;
  const [B, S] = mask.dims as [number, number];
  const per = new Map<string, number>();
  for (const [k, v] of Object.entries(out)) {
    const d = v.dims ?? [];
    if (d.length >= 2 && d[0] === B && d[1] === S) per.set(k, d.slice(2).reduce((x, y) => x * y, 1));
  }
  return (name, i) => {
    const p = per.get(name);
    return p === undefined || Number(mask.data[Math.floor(i / p)]) !== 0;
  };
}

/**
 * float16 outputs (graphs with fp16 I/O, e.g. onnxruntime-genai's q4f16 exports) as float32 values:
 * transformers.js hands their bit patterns over in a Uint16Array where Float16Array is missing.
 */
function widenHalf(out: Outputs): Outputs {
  const res: Outputs = {};
  for (const [k, v] of Object.entries(out)) {
    if (v.type !== 'float16') {
      res[k] = v;
      continue;
    }
    const src = v.data as ArrayLike<number>;
    const data = new Float32Array(src.length);
    const bits = new Uint32Array(data.buffer);
    if (src instanceof Uint16Array) for (let i = 0; i < src.length; i++) bits[i] = f16BitsToF32Bits(src[i]!);
    else for (let i = 0; i < src.length; i++) data[i] = src[i]!;
    res[k] = { ...v, type: 'float32', data };
  }
  return res;
}

function maxAbsDiff(a: Outputs, b: Outputs, names: string[], valid?: Valid): number {
  let d = 0;
  for (const k of names) {
    const x = a[k]!.data as ArrayLike<number>;
    const y = b[k]!.data as ArrayLike<number>;
    if (x.length !== y.length) return Number.POSITIVE_INFINITY;
    for (let i = 0; i < x.length; i++) {
      if (valid && !valid(k, i)) continue;
      const v = Math.abs(x[i]! - y[i]!);
      if (!(v <= d)) d = Number.isNaN(v) ? Number.POSITIVE_INFINITY : v;
    }
  }
  return d;
}

function maxAbs(a: Outputs, names: string[], valid?: Valid): number {
  let m = 0;
  for (const k of names) {
    const x = a[k]!.data as ArrayLike<number>;
    for (let i = 0; i < x.length; i++) if ((!valid || valid(k, i)) && Math.abs(x[i]!) > m) m = Math.abs(x[i]!);
  }
  return m;
}

/**
 * An image model: config.json says ViT (`model_type: 'vit'` or a `ViT…`/`…ForImageClassification`
 * architecture), or the folder has an image preprocessor config and no tokenizer (another vision
 * encoder). Text models ship tokenizer files; transformers.js would fail on them otherwise.
 */
async function isImageModel(dir: string, modelType: string | undefined, arch: string): Promise<boolean> {
  if (modelType === 'vit' || /^ViT|ForImageClassification$/.test(arch)) return true;
  const exists = (f: string): Promise<boolean> => fileExists(path.join(dir, f));
  const [pre, tok, tokCfg] = await Promise.all([exists('preprocessor_config.json'), exists('tokenizer.json'), exists('tokenizer_config.json')]);
  return pre && !tok && !tokCfg;
}

/** Run the four models of the check and return the differences. */
export async function verify(opts: VerifyOptions): Promise<VerifyResult> {
  const tf = await import('@huggingface/transformers');
  const { env } = tf;
  const dtype = opts.dtype ?? 'fp32';
  const dir = path.resolve(opts.model);
  // optimum's encoder_model + decoder_model_merged folders (Whisper): two sessions, speech inputs.
  if (await isEncoderDecoderFolder(dir)) return verifyEncoderDecoder(opts);
  const config = JSON.parse(await readFile(path.join(dir, 'config.json'), 'utf8')) as { architectures?: string[]; model_type?: string };
  const arch = config.architectures?.[0] ?? '';
  const image = await isImageModel(dir, config.model_type, arch);
  if (image && opts.texts) throw new PluginError(`verify: ${dir} is an image model (${arch || config.model_type}); it takes images, not texts`);
  if (!image && opts.images) throw new PluginError(`verify: ${dir} is a text model (${arch || config.model_type || 'no architectures'}); it takes texts, not images`);
  const Loader = image
    ? /ForImageClassification/.test(arch)
      ? tf.AutoModelForImageClassification
      : tf.AutoModel
    : /CausalLM|LMHead/.test(arch)
      ? tf.AutoModelForCausalLM
      : /ForSequenceClassification/.test(arch)
        ? tf.AutoModelForSequenceClassification
        : tf.AutoModel;

  const { id, restore: restoreEnv } = useLocalFolder(env, dir);
  const adapter = typeof opts.adapter === 'string' ? await loadAdapter(opts.adapter) : opts.adapter;
  const fp32Path = path.join(dir, 'onnx', 'model.onnx');
  try {
    // The external references of the file the merged reference is built from are checked before any
    // model runs. The bytes are not held meanwhile (for an inline model they are all its weights):
    // they and the side files (possibly gigabytes) are read again only for the merge.
    const locations = sideLocations(new Uint8Array(await readFile(fp32Path)));
    let inputs: Record<string, unknown>;
    let count: number;
    if (image) {
      const images = opts.images ?? syntheticImages();
      if (images.length === 0) throw new PluginError('verify: no images to run');
      const processor = await tf.AutoImageProcessor.from_pretrained(id);
      // One batch through the model's own preprocessing (resize, rescale, normalize), so the check
      // sees the inputs a real image-classification call would; only pixel_values is a model input
      // (the processor also returns the original/reshaped sizes).
      const processed = (await processor(images.map((x) => new tf.RawImage(x.data, x.width, x.height, x.channels)))) as { pixel_values: unknown };
      inputs = { pixel_values: processed.pixel_values };
      count = images.length;
    } else {
      const tokenizer = await tf.AutoTokenizer.from_pretrained(id);
      const texts = opts.texts ?? DEFAULT_TEXTS;
      inputs = tokenizer(texts, { padding: true, truncation: true }) as Record<string, unknown>;
      count = texts.length;
    }
    const load = (dt: VerifyDtype): Promise<{ (x: unknown): Promise<Outputs>; dispose(): Promise<unknown> }> =>
      Loader.from_pretrained(id, {
        dtype: dt,
        // transformers.js validates the device name at run time (its list depends on the runtime).
        ...(opts.device ? { device: opts.device as NonNullable<Parameters<typeof Loader.from_pretrained>[1]>['device'] } : {}),
        ...(opts.graphOptimizationLevel ? { session_options: { graphOptimizationLevel: opts.graphOptimizationLevel } } : {}),
      }) as never;
    const run = async (m: (x: unknown, o?: unknown) => Promise<Outputs>, o?: { scale: number }): Promise<Outputs> =>
      widenHalf(await (o ? m({ ...inputs }, o) : m({ ...inputs })));

    const baseOut = await runOnce(() => load(dtype), run);
    // The dtype's own error at the base weights (the scale of the tolerance, see tolerance.ts).
    const base32Out = dtype !== 'fp32' ? await runOnce(() => load('fp32'), run) : baseOut;

    // The branch precision follows the device the check runs on (fp32 branches on CPU providers).
    const plugged = await loadPlugged(env, { mode: opts.mode ?? 'branch', ...(opts.device ? { device: opts.device } : {}), ...(opts.branchDtype ? { branchDtype: opts.branchDtype } : {}) }, () => load(dtype));
    const disabledOut = await run(plugged);
    // Named after the user's adapter (its folder / URL / Hub id), so errors talk about it.
    const name = adapterLabel(opts.adapter);
    const info = await plugged.load_adapter(adapter, { adapter_name: name, ...(opts.backend ? { backend: opts.backend } : {}) });
    plugged.set_adapter(name);
    const adapterOut = await run(plugged);
    // An adapter that replaces heads (modules_to_save) moves the outputs to another point of the
    // quantized network: the dtype's error there is measured with the adapter's heads on both sides
    // and ΔW scaled by 0 (the branch adds exactly 0), not through the base model's heads, whose
    // error can be several times smaller (real DistilBERT adapter, q8: 5.7–12.5× off before).
    let headsOut: Outputs | undefined;
    let heads32Out: Outputs | undefined;
    if (dtype !== 'fp32' && info.modules_to_save.length > 0) {
      headsOut = await run(plugged, { scale: 0 });
      const plugged32 = await loadPlugged(env, { mode: opts.mode ?? 'branch' }, () => load('fp32'));
      await plugged32.load_adapter(adapter, { adapter_name: name, ...(opts.backend ? { backend: opts.backend } : {}) });
      plugged32.set_adapter(name);
      heads32Out = await run(plugged32, { scale: 0 });
      await plugged32.dispose();
    }
    await plugged.dispose();

    const fp32 = new Uint8Array(await readFile(fp32Path));
    const external = await readSideFiles(dir, locations);
    const merged = mergeModel(fp32, await materializeAdapter(adapter, opts.backend), adapter.extras, { external });
    // The merged weights are inline; the others still reference the side files. Served as bytes, the
    // merged .onnx has no folder for ORT to find them in ("escapes working directory"), so
    // transformers.js must hand them over as `externalData` buffers (it asks for them as config.json's
    // use_external_data_format says), which it does only for files the cache answers: answer them from
    // the bytes the merge read (no second read). In Node it asks twice, by local path and then by its
    // Hub cache key (`…/<id>/resolve/main/onnx/model.onnx_data`): both end in `/onnx/<location>`.
    // Left unanswered, transformers.js 4.3 fails inside a promise it never settles: the load hangs.
    const side = (p: string): Uint8Array | undefined => {
      if (!DATA_FILE_RE.test(p)) return undefined;
      for (const [location, data] of external) if (p.endsWith(`/onnx/${location.replace(/\\/g, '/')}`)) return data;
      return undefined;
    };
    serveFromBytes(env, (p) => (p.endsWith('.onnx') ? merged : side(p)));
    const mergedOut = await runOnce(() => load('fp32'), run);

    const names = Object.keys(baseOut).filter((k) => baseOut[k]!.type === 'float32' && !k.startsWith('present'));
    const valid = image ? undefined : unmaskedPositions(inputs, mergedOut);
    const refMax = maxAbs(mergedOut, names, valid);
    const dtypeError = headsOut && heads32Out ? maxAbsDiff(headsOut, heads32Out, names, valid) : maxAbsDiff(baseOut, base32Out, names, valid);
    const effect = maxAbsDiff(adapterOut, baseOut, names);
    return {
      // Unmasked positions (see unmaskedPositions); base_max_abs_diff below covers every element.
      max_abs_diff: maxAbsDiff(adapterOut, mergedOut, names, valid),
      tolerance: toleranceFor(dtype, dtypeError, refMax, effect),
      dtype_error: dtypeError,
      reference_max_abs: refMax,
      base_max_abs_diff: maxAbsDiff(disabledOut, baseOut, names),
      adapter_effect: effect,
      outputs: names,
      dtype,
      mode: opts.mode ?? 'branch',
      ...(opts.graphOptimizationLevel ? { graph_optimization_level: opts.graphOptimizationLevel } : {}),
      peft_type: info.peft_type,
      modules: info.modules,
      modules_to_save: info.modules_to_save,
      input_kind: image ? 'image' : 'text',
      inputs: count,
      texts: image ? 0 : count,
      images: image ? count : 0,
    };
  } finally {
    restoreEnv();
  }
}

/** What errors call the adapter: the last segment of its folder, URL or Hub id; `adapter` for an object. */
export function adapterLabel(adapter: string | Adapter): string {
  if (typeof adapter !== 'string') return 'adapter';
  const last = adapter.replace(/[\\/]+$/, '').split(/[\\/]/).pop();
  return last || adapter || 'adapter';
}
