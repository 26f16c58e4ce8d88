/**
 * The adapter trainer. One training step: materialize every module's (A′, B′, s) from the method's
 * tensors (core's differentiable model), feed A = A′ and B = s·B′ᵀ (and the head parameters) to
 * the training graph, read back loss and ∂L/∂A, ∂L/∂B, ∂L/∂head, chain them through the method's
 * backward to its trainable tensors (frozen ones get no gradient), clip, AdamW. The same code runs
 * on onnxruntime-node and onnxruntime-web: the caller passes the `ort` module.
 */
import {
  createAdapter,
  Prng,
  differentiableModel,
  getMethod,
  NonFiniteError,
  shapeFromHfConfig,
  tensor,
  type Adapter,
  type DifferentiableModel,
} from '@tensorpeft/core';
import { DatasetError, TrainingGraphError } from '../errors.js';
import { onnx, tensorValues } from '../onnx.js';
import { TRAINING_SESSION_OPTIONS, type OrtLike, type OrtSessionLike, type OrtTensorLike } from '../probe.js';
import { encodeExamples, padBatch, shuffled, type Encoded, type Example, type PaddedBatch } from './data.js';
import { modelFeeds } from './feeds.js';
import { buildTrainingGraph, type TrainingGraph, type TrainLoss } from './graph.js';
import { LABELS_INPUT, TARGETS_INPUT, WEIGHTS_INPUT } from './loss.js';
import { AdamW, clipGlobalNorm, linearSchedule } from './optim.js';

export type TrainTask = 'seq-cls' | 'causal-lm';

/** The model to train: its ONNX bytes (fp32 or q8) and config.json. */
export interface TrainableModel {
  onnx: Uint8Array;
  config: Record<string, unknown>;
}

export interface CreateTrainerOptions {
  /** Method CLI name or peft_type (`trac`, `lora`, …). */
  method: string;
  /** adapter_config.json fields (targets default to the model's PEFT defaults). */
  config?: Record<string, unknown>;
  /** onnxruntime module (onnxruntime-node or onnxruntime-web). */
  ort: OrtLike;
  /** Default: `causal-lm` when the logits are per token, else `seq-cls`. */
  task?: TrainTask;
  /** Train the classification heads as PEFT `modules_to_save` (default true for seq-cls). */
  heads?: boolean;
  /** Train the adapter's tensors (default true); false trains the heads only (a baseline). */
  adapter?: boolean;
  /** Seed of the adapter init and of the shuffling (default 0). */
  seed?: number;
  /** Start from these method tensors instead of the method's init (e.g. a loaded adapter's). */
  initial?: Adapter;
  /** Text → token ids (e.g. a transformers.js tokenizer), for examples given as text. */
  tokenize?: (text: string) => number[];
  /**
   * `cross-entropy` on labels (default), or `logits-mse`: the squared error to a teacher's logits,
   * given per example as `logits` (distillation; zero exactly when the logits match).
   */
  loss?: TrainLoss;
  /** Session options of the training session (default: basic graph optimizations). */
  sessionOptions?: Record<string, unknown>;
}

export interface TrainOptions {
  epochs?: number;
  batch_size?: number;
  learning_rate?: number;
  weight_decay?: number;
  /** Warm-up steps (or `warmup_ratio` of the total). */
  warmup_steps?: number;
  warmup_ratio?: number;
  /** Global gradient-norm clip (HF default 1; 0 = off). */
  max_grad_norm?: number;
  gradient_accumulation_steps?: number;
  /** Truncate examples to this many tokens (default 128). */
  max_length?: number;
  /** Stop after this many optimizer steps. */
  max_steps?: number;
  eval_dataset?: readonly Example[];
  /** Evaluate every N optimizer steps (default: at each epoch end). */
  eval_steps?: number;
  /** Stop after this many evaluations without a lower eval loss, restoring the best tensors. */
  early_stopping_patience?: number;
  progress_callback?: (info: TrainProgress) => void;
  signal?: AbortSignal;
}

export interface TrainProgress {
  status: 'step' | 'eval' | 'done';
  step: number;
  total_steps: number;
  epoch: number;
  loss?: number;
  learning_rate?: number;
  grad_norm?: number;
  eval_loss?: number;
  eval_accuracy?: number;
  /** Seconds since train() started. */
  elapsed: number;
}

export interface TrainResult {
  steps: number;
  /** Training loss per optimizer step. */
  losses: number[];
  evals: Array<{ step: number; loss: number; accuracy: number }>;
  stopped: 'done' | 'max_steps' | 'early_stop' | 'cancelled';
  seconds: number;
}

export interface EvalResult {
  loss: number;
  accuracy: number;
}

export class Trainer {
  private cancelled = false;
  private readonly values = new Map<string, Float64Array>();
  private readonly trainable: string[];
  private readonly heads: Map<string, { input: string; dims: number[]; module: string }>;

  constructor(
    readonly adapter: Adapter,
    readonly graph: TrainingGraph,
    private readonly model: DifferentiableModel,
    private readonly session: OrtSessionLike,
    private readonly evalSession: OrtSessionLike,
    private readonly ort: OrtLike,
    readonly task: TrainTask,
    private readonly modelConfig: Record<string, unknown>,
    headInit: Map<string, Float32Array>,
    private readonly opts: CreateTrainerOptions,
  ) {
    for (const p of adapter.plan.params) this.values.set(p.key, Float64Array.from(adapter.params.get(p.key)!.data));
    this.trainable = opts.adapter === false ? [] : adapter.plan.params.filter((p) => p.kind === 'trainable').map((p) => p.key);
    this.heads = new Map();
    for (const p of graph.params) {
      const module = p.name.replace(/\.(weight|bias)$/, '');
      const key = `base_model.model.${module}.modules_to_save.default.${p.name.slice(module.length + 1)}`;
      this.heads.set(key, { input: p.input, dims: p.dims, module });
      this.values.set(key, Float64Array.from(headInit.get(p.name)!));
      this.trainable.push(key);
    }
    this.syncAdapter();
  }

  /** Stop `train()` after the current step (it resolves with `stopped: 'cancelled'`). */
  cancel(): void {
    this.cancelled = true;
  }

  /** Trainable tensors by key (method tensors, then head tensors under their PEFT keys). */
  get trainableKeys(): readonly string[] {
    return this.trainable;
  }

  /** Feeds of the adapter and head inputs for the current tensors, and the forward cache. */
  private adapterFeeds(): { feeds: Record<string, OrtTensorLike>; cache: unknown; s: number[] } {
    const get = (k: string): Float64Array => this.values.get(k)!;
    const { updates, cache } = this.model.forward(get);
    const feeds: Record<string, OrtTensorLike> = {};
    const s: number[] = [];
    this.adapter.plan.modules.forEach((m, i) => {
      const u = updates[i]!;
      const b = this.graph.branches.find((x) => x.path === m.path)!;
      const Bt = new Float32Array(u.rho * m.m);
      for (let o = 0; o < m.m; o++) for (let r = 0; r < u.rho; r++) Bt[r * m.m + o] = u.s * u.B[o * u.rho + r]!;
      feeds[b.inputA] = new this.ort.Tensor('float32', Float32Array.from(u.A), [m.n, u.rho]);
      feeds[b.inputB] = new this.ort.Tensor('float32', Bt, [u.rho, m.m]);
      s.push(u.s);
    });
    for (const [key, h] of this.heads) feeds[h.input] = new this.ort.Tensor('float32', Float32Array.from(this.values.get(key)!), [1, ...h.dims]);
    return { feeds, cache, s };
  }

  private batchFeeds(b: PaddedBatch): Record<string, OrtTensorLike> {
    const f = modelFeeds(this.ort, this.graph.inputs, { batch: b.batch, seq: b.seq, ids: b.ids, mask: b.mask });
    const dims = this.task === 'causal-lm' ? [b.batch, b.seq] : [b.batch];
    if (this.graph.lossKind === 'logits-mse') {
      const C = this.graph.classes;
      // predict() has no teacher logits: zeros (its logits do not depend on the targets).
      f[TARGETS_INPUT] = new this.ort.Tensor('float32', b.soft ?? new Float32Array(dims.reduce((a, d) => a * d, C)), [...dims, C]);
    } else f[LABELS_INPUT] = new this.ort.Tensor('int64', b.labels, dims);
    f[WEIGHTS_INPUT] = new this.ort.Tensor('float32', b.weights, dims);
    return f;
  }

  /** Loss and gradients (by trainable key, accumulated into `grads` scaled by `scale`) of one batch. */
  async lossAndGrad(b: PaddedBatch, grads: Map<string, Float64Array>, scale = 1): Promise<number> {
    const { feeds, cache, s } = this.adapterFeeds();
    const out = await this.session.run({ ...this.batchFeeds(b), ...feeds });
    const loss = (out[this.graph.loss]!.data as Float32Array)[0]!;
    const dA: Float64Array[] = [];
    const dB: Float64Array[] = [];
    this.adapter.plan.modules.forEach((m, i) => {
      const br = this.graph.branches.find((x) => x.path === m.path)!;
      const gA = out[this.graph.grads.get(br.inputA)!]!.data as Float32Array;
      const gB = out[this.graph.grads.get(br.inputB)!]!.data as Float32Array; // [ρ, m]
      const rho = gA.length / m.n;
      dA.push(Float64Array.from(gA, (x) => x * scale));
      // B = s·B′ᵀ ⇒ ∂L/∂B′[o, r] = s·∂L/∂B[r, o].
      const d = new Float64Array(m.m * rho);
      for (let o = 0; o < m.m; o++) for (let r = 0; r < rho; r++) d[o * rho + r] = s[i]! * gB[r * m.m + o]! * scale;
      dB.push(d);
    });
    const get = (k: string): Float64Array => this.values.get(k)!;
    const trainableSet = new Set(this.trainable);
    const gradOf = (k: string): Float64Array | undefined => {
      if (!trainableSet.has(k)) return undefined;
      let g = grads.get(k);
      if (!g) {
        g = new Float64Array(this.values.get(k)!.length);
        grads.set(k, g);
      }
      return g;
    };
    this.model.backward(get, cache, dA, dB, gradOf);
    for (const [key, h] of this.heads) {
      const g = out[this.graph.grads.get(h.input)!]!.data as Float32Array;
      const acc = gradOf(key)!;
      for (let i = 0; i < acc.length; i++) acc[i]! += g[i]! * scale;
    }
    for (const t of Object.values(out)) t.dispose?.();
    return loss;
  }

  private encode(ds: readonly Example[], maxLength: number, source?: string, withTargets = true): Encoded[] {
    const c = this.modelConfig;
    // Never longer than the model's position table (longer rows would fail inside onnxruntime).
    const positions = [c['max_position_embeddings'], c['n_positions']].find((v): v is number => typeof v === 'number');
    return encodeExamples(ds, {
      task: this.task,
      maxLength: positions !== undefined ? Math.min(maxLength, positions) : maxLength,
      numLabels: typeof c['num_labels'] === 'number' ? c['num_labels'] : Object.keys((c['id2label'] as object | undefined) ?? { 0: 0, 1: 1 }).length,
      ...(c['label2id'] ? { label2id: c['label2id'] as Record<string, number> } : {}),
      ...(typeof c['vocab_size'] === 'number' ? { vocabSize: c['vocab_size'] } : {}),
      ...(this.opts.tokenize ? { tokenize: this.opts.tokenize } : {}),
      ...(source ? { source } : {}),
      ...(withTargets && this.graph.lossKind === 'logits-mse' ? { logitClasses: this.graph.classes } : {}),
    });
  }

  private padId(): number {
    const p = this.modelConfig['pad_token_id'];
    return typeof p === 'number' ? p : 0;
  }

  /** Loss and accuracy on a dataset (classification: argmax = label; causal LM: next-token argmax). */
  async evaluate(ds: readonly Example[], o: { batch_size?: number; max_length?: number } = {}): Promise<EvalResult> {
    const enc = this.encode(ds, o.max_length ?? 128, 'eval dataset');
    const bs = o.batch_size ?? 8;
    const { feeds } = this.adapterFeeds();
    let lossSum = 0;
    let count = 0;
    let correct = 0;
    for (let i = 0; i < enc.length; i += bs) {
      const b = padBatch(enc.slice(i, i + bs), this.task, this.padId());
      const out = await this.evalSession.run({ ...this.batchFeeds(b), ...feeds });
      lossSum += (out[this.graph.loss]!.data as Float32Array)[0]! * b.count;
      const logits = out[this.graph.logits]!.data as Float32Array;
      const C = logits.length / b.targets.length;
      b.targets.forEach((t, j) => {
        if (t < 0) return;
        let best = 0;
        for (let k = 1; k < C; k++) if (logits[j * C + k]! > logits[j * C + best]!) best = k;
        if (best === t) correct++;
      });
      count += b.count;
      for (const t of Object.values(out)) t.dispose?.();
    }
    return { loss: lossSum / count, accuracy: correct / count };
  }

  /** Logits per example (classification: [C]; causal LM: [tokens × V]) under the current tensors. */
  async predict(ds: readonly Example[], o: { batch_size?: number; max_length?: number } = {}): Promise<Float32Array[]> {
    const enc = this.encode(ds.map((x) => ({ ...x, label: x.label ?? 0 })), o.max_length ?? 128, 'predict dataset', false);
    const bs = o.batch_size ?? 8;
    const { feeds } = this.adapterFeeds();
    const res: Float32Array[] = [];
    for (let i = 0; i < enc.length; i += bs) {
      const items = enc.slice(i, i + bs);
      const b = padBatch(items, this.task, this.padId());
      const out = await this.evalSession.run({ ...this.batchFeeds(b), ...feeds });
      const logits = out[this.graph.logits]!.data as Float32Array;
      const per = logits.length / b.batch;
      items.forEach((x, r) => res.push(logits.slice(r * per, this.task === 'causal-lm' ? r * per + (per / b.seq) * x.ids.length : (r + 1) * per)));
      for (const t of Object.values(out)) t.dispose?.();
    }
    return res;
  }

  async train(dataset: readonly Example[], o: TrainOptions = {}): Promise<TrainResult> {
    const t0 = Date.now();
    this.cancelled = false;
    const enc = this.encode(dataset, o.max_length ?? 128);
    const bs = o.batch_size ?? 8;
    const accum = o.gradient_accumulation_steps ?? 1;
    if (!Number.isInteger(bs) || bs < 1) throw new DatasetError('batch_size must be a positive integer', { field: 'batch_size', found: bs });
    const epochs = o.epochs ?? 1;
    const perEpoch = Math.ceil(Math.ceil(enc.length / bs) / accum);
    const total = Math.min(o.max_steps ?? Infinity, perEpoch * epochs);
    const warmup = o.warmup_steps ?? Math.round((o.warmup_ratio ?? 0) * total);
    const lr0 = o.learning_rate ?? 1e-3;
    const opt = new AdamW({ weightDecay: o.weight_decay ?? 0 });
    const trainable = new Map(this.trainable.map((k) => [k, this.values.get(k)!]));
    const losses: number[] = [];
    const evals: TrainResult['evals'] = [];
    let best = { loss: Infinity, values: new Map<string, Float64Array>() };
    let bad = 0;
    let step = 0;
    let stopped: TrainResult['stopped'] = 'done';
    const seed = this.opts.seed ?? 0;
    const report = (p: Omit<TrainProgress, 'elapsed' | 'total_steps'>): void => o.progress_callback?.({ ...p, total_steps: total, elapsed: (Date.now() - t0) / 1000 });
    const runEval = async (epoch: number): Promise<boolean> => {
      if (!o.eval_dataset) return false;
      const r = await this.evaluate(o.eval_dataset, { batch_size: bs, max_length: o.max_length ?? 128 });
      evals.push({ step, loss: r.loss, accuracy: r.accuracy });
      report({ status: 'eval', step, epoch, eval_loss: r.loss, eval_accuracy: r.accuracy });
      if (r.loss < best.loss) {
        best = { loss: r.loss, values: new Map([...trainable].map(([k, v]) => [k, Float64Array.from(v)])) };
        bad = 0;
      } else bad++;
      return o.early_stopping_patience !== undefined && bad >= o.early_stopping_patience;
    };
    outer: for (let epoch = 0; epoch < epochs; epoch++) {
      const order = shuffled(enc.length, seed, epoch);
      for (let i = 0; i < order.length; ) {
        if (this.cancelled || o.signal?.aborted) {
          stopped = 'cancelled';
          break outer;
        }
        if (step >= total) {
          stopped = o.max_steps !== undefined && step >= o.max_steps ? 'max_steps' : 'done';
          break outer;
        }
        const grads = new Map<string, Float64Array>();
        let loss = 0;
        let micro = 0;
        for (; micro < accum && i < order.length; micro++, i += bs) {
          const b = padBatch(order.slice(i, i + bs).map((j) => enc[j]!), this.task, this.padId());
          loss += await this.lossAndGrad(b, grads, 1 / accum);
        }
        // A short last group: rescale to the mean over the micro-batches it had.
        if (micro < accum) for (const g of grads.values()) for (let k = 0; k < g.length; k++) g[k]! *= accum / micro;
        loss /= micro;
        const norm = clipGlobalNorm(grads, o.max_grad_norm ?? 1);
        if (!Number.isFinite(loss) || !Number.isFinite(norm)) {
          throw new NonFiniteError('training produced a non-finite loss or gradient (lower the learning rate, or check the adapter config)', { field: `step ${step + 1}`, found: { loss, grad_norm: norm } });
        }
        const lr = linearSchedule(lr0, step, warmup, total);
        opt.step(trainable, grads, lr);
        step++;
        losses.push(loss);
        report({ status: 'step', step, epoch, loss, learning_rate: lr, grad_norm: norm });
        if (o.eval_steps && step % o.eval_steps === 0 && (await runEval(epoch))) {
          stopped = 'early_stop';
          break outer;
        }
      }
      if (!o.eval_steps && (await runEval(epoch))) {
        stopped = 'early_stop';
        break;
      }
    }
    if (stopped === 'early_stop') for (const [k, v] of best.values) trainable.get(k)!.set(v);
    this.syncAdapter();
    const seconds = (Date.now() - t0) / 1000;
    report({ status: 'done', step, epoch: epochs, ...(losses.length ? { loss: losses[losses.length - 1]! } : {}) });
    return { steps: step, losses, evals, stopped, seconds };
  }

  /**
   * The training graph's gradients against central differences of its own loss, on the first batch
   * of `examples` at the current tensors: for up to `tensors` graph inputs (adapter factors, head
   * parameters), the directional derivative along v = normalize(ĝ + r̂) (its gradient direction plus
   * a random one). Relative error |g·v − fd| / (|fd| + 1e-3): the floor is the float32 rounding of
   * the loss over 2h (≈ 1e-6 / 4e-3 = 2.5e-4 at h = 2e-3), so a correct graph reads ≲ 1e-2.
   */
  async gradCheck(examples: readonly Example[], o: { h?: number; tensors?: number; batch_size?: number; seed?: number } = {}): Promise<{ max_rel_err: number; checked: number }> {
    const h = o.h ?? 2e-3;
    const enc = this.encode(examples.slice(0, o.batch_size ?? 8), 128);
    const b = padBatch(enc, this.task, this.padId());
    const base = { ...this.batchFeeds(b), ...this.adapterFeeds().feeds };
    const out = await this.session.run(base);
    const inputs = [...this.graph.grads.keys()];
    const rng = new Prng(o.seed ?? 0, 'grad-check');
    const pick = inputs.length <= (o.tensors ?? 8) ? inputs : shuffled(inputs.length, o.seed ?? 0, 0).slice(0, o.tensors ?? 8).map((i) => inputs[i]!);
    let worst = 0;
    for (const name of pick) {
      const g = out[this.graph.grads.get(name)!]!.data as Float32Array;
      const x = base[name]!;
      const xv = x.data as Float32Array;
      const gn = Math.hypot(...g);
      const r = Float64Array.from(g, () => rng.normal());
      const rn = Math.hypot(...r);
      const v = Float64Array.from(g, (gi, i) => (gn > 0 ? gi / gn : 0) + r[i]! / rn);
      const vn = Math.hypot(...v);
      let analytic = 0;
      for (let i = 0; i < v.length; i++) analytic += (v[i]! / vn) * g[i]!;
      const lossAt = async (sign: number): Promise<number> => {
        const shifted = new this.ort.Tensor('float32', Float32Array.from(xv, (xi, i) => xi + (sign * h * v[i]!) / vn), x.dims);
        const res = await this.evalSession.run({ ...base, [name]: shifted });
        return (res[this.graph.loss]!.data as Float32Array)[0]!;
      };
      const fd = ((await lossAt(1)) - (await lossAt(-1))) / (2 * h);
      worst = Math.max(worst, Math.abs(analytic - fd) / (Math.abs(fd) + 1e-3));
    }
    return { max_rel_err: worst, checked: pick.length };
  }

  /** Write the current tensors into `adapter` (float32 params, head tensors as modules_to_save extras). */
  private syncAdapter(): void {
    for (const p of this.adapter.plan.params) this.adapter.params.set(p.key, tensor([...p.shape], Float32Array.from(this.values.get(p.key)!)));
    const mods = new Set<string>();
    for (const [key, h] of this.heads) {
      this.adapter.extras.set(key, tensor([...h.dims], Float32Array.from(this.values.get(key)!)));
      mods.add(h.module);
    }
    if (mods.size) (this.adapter.config as { modules_to_save?: string[] | null }).modules_to_save = [...mods];
  }

  async release(): Promise<void> {
    await this.session.release?.();
    if (this.evalSession !== this.session) await this.evalSession.release?.();
  }
}

/** `causal-lm` / `seq-cls` from config.json's `architectures` (HF class names), if it says. */
function taskFromConfig(config: Record<string, unknown>): TrainTask | undefined {
  const a = config['architectures'];
  const name = Array.isArray(a) && typeof a[0] === 'string' ? a[0] : '';
  if (/(ForCausalLM|LMHeadModel)$/.test(name)) return 'causal-lm';
  if (/ForSequenceClassification$/.test(name)) return 'seq-cls';
  return undefined;
}

/** Initializer values of the named float tensors of an ONNX model (head parameters). */
function initializerValues(bytes: Uint8Array, names: readonly string[]): Map<string, Float32Array> {
  const want = new Set(names);
  const out = new Map<string, Float32Array>();
  for (const t of onnx.ModelProto.decode(bytes).graph!.initializer ?? []) {
    if (want.has(t.name!)) out.set(t.name!, Float32Array.from(tensorValues(t)));
  }
  return out;
}

/**
 * A trainer for `method` on `model`: plans the adapter for the model's shape (config.json), builds
 * the training graph and its onnxruntime sessions.
 */
export async function createTrainer(model: TrainableModel, opts: CreateTrainerOptions): Promise<Trainer> {
  const shape = shapeFromHfConfig(model.config);
  const adapter = opts.initial ?? createAdapter({ method: getMethod(opts.method), config: opts.config ?? {}, shape, seed: opts.seed ?? 0 });
  // Heads (modules_to_save) are trained for classification only. The task is known for sure after
  // the graph is built, but the rewrite needs the choice first: take it from config.json's
  // architecture class when the caller gave no task (a GPT-2 LM's Conv1D Gemms would otherwise be
  // taken for heads and saved as modules_to_save).
  const probeTask = opts.task ?? taskFromConfig(model.config);
  const heads = opts.heads ?? probeTask !== 'causal-lm';
  const graph = await buildTrainingGraph(model.onnx, { targets: adapter.plan.modules.map((m) => m.path), heads, ort: opts.ort, ...(opts.loss ? { loss: opts.loss } : {}) });
  const task: TrainTask = opts.task ?? (graph.sequenceLogits ? 'causal-lm' : 'seq-cls');
  if ((task === 'causal-lm') !== graph.sequenceLogits) throw new TrainingGraphError(`task ${task} does not match the model's logits`, { expected: graph.sequenceLogits ? 'causal-lm' : 'seq-cls', found: task });
  const missing = adapter.plan.modules.filter((m) => !graph.branches.some((b) => b.path === m.path));
  if (missing.length) throw new TrainingGraphError('planned modules without an adapter input in the model', { field: missing[0]!.path, found: missing.length });
  const dm = differentiableModel(adapter.config as Record<string, unknown>, adapter.plan);
  const session = await opts.ort.InferenceSession.create(graph.bytes, opts.sessionOptions ?? TRAINING_SESSION_OPTIONS);
  const evalSession = await opts.ort.InferenceSession.create(graph.forward, opts.sessionOptions ?? TRAINING_SESSION_OPTIONS);
  const headInit = initializerValues(model.onnx, graph.params.map((p) => p.name));
  if (opts.initial) {
    for (const p of graph.params) {
      const module = p.name.replace(/\.(weight|bias)$/, '');
      const t = opts.initial.extras.get(`base_model.model.${module}.modules_to_save.default.${p.name.slice(module.length + 1)}`);
      if (t) headInit.set(p.name, t.data);
    }
  }
  return new Trainer(adapter, graph, dm, session, evalSession, opts.ort, task, model.config, headInit, opts);
}
