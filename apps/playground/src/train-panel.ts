/**
 * The Train panel: labelled examples (pasted, dropped, or the bundled set) → an adapter of the
 * chosen method trained in this browser by `@tensorpeft/autodiff`'s Trainer (one ONNX training
 * graph run by ONNX Runtime Web, wasm or WebGPU EP), with a live loss plot, progress and cancel;
 * the result joins the adapter list (hot-swapped into the running model by the plugin) and its
 * two PEFT files can be downloaded. The page's model, tokenizer and adapter list come from main.ts
 * through `TrainHost`.
 */
import * as ort from 'onnxruntime-web/webgpu';
import { createTrainer, type OrtLike, type Trainer } from '@tensorpeft/autodiff';
import { adapterToFiles, fetchBytes } from '@tensorpeft/core';
import { lossChart } from './charts.js';
import { bundledDataset, bundledJsonl } from './dataset.js';
import { describeError, formatBytes, PlaygroundFileError, uniqueName, type Dtype } from './logic.js';
import { checkLabels, DEFAULT_METHOD, formatTrainProgress, lossPoints, methodChoices, parseTrainingData, parseTrainSettings, trainingFileFor, yieldingOrt, type DataFormat } from './train-logic.js';

/** The page's side of the panel (main.ts). */
export interface TrainHost {
  /** The model in use, or undefined while a model switch is under way. */
  model(): { id: string; dtype: Dtype; labels: string[]; methodConfigs: Record<string, Record<string, unknown>> } | undefined;
  /** URL of a file of the model in use (its folder on this server, or on the Hub). */
  fileUrl(rel: string): string;
  tokenize(text: string): number[];
  /** Names already taken in the adapter list. */
  takenNames(): string[];
  /** Load the trained adapter's files into the running model and list it (like a dropped adapter). */
  addTrained(name: string, files: { config: Uint8Array; safetensors: Uint8Array }): Promise<void>;
  /** Model switches wait while a run is in progress (the run reads the model's files and tokenizer). */
  setBusy(busy: boolean): void;
}

/** Largest model file the panel downloads to train on (the base-size fp32 file is 255 MiB). */
const TRAIN_MODEL_MAX_BYTES = 1024 * 1024 * 1024;

const $ = <T extends HTMLElement>(sel: string): T => document.querySelector(sel) as T;

export class TrainPanel {
  private readonly dataEl = $<HTMLTextAreaElement>('#train-data');
  private readonly formatSel = $<HTMLSelectElement>('#train-format');
  private readonly methodSel = $<HTMLSelectElement>('#train-method');
  private readonly configEl = $<HTMLInputElement>('#train-config');
  private readonly deviceSel = $<HTMLSelectElement>('#train-device');
  private readonly startBtn = $<HTMLButtonElement>('#train-start');
  private readonly cancelBtn = $<HTMLButtonElement>('#train-cancel');
  private readonly stateEl = $<HTMLSpanElement>('#train-state');
  private readonly progressEl = $<HTMLProgressElement>('#train-progress');
  private readonly chartEl = $<HTMLDivElement>('#train-chart');
  private readonly resultEl = $<HTMLParagraphElement>('#train-result');
  private readonly errorEl = $<HTMLParagraphElement>('#train-error');
  /** Where the text in the box came from (named in data errors). */
  private source = 'bundled dataset';
  private trainer: Trainer | undefined;
  private downloads: string[] = [];
  /** The method whose config the config field shows (a user edit is kept until the method changes). */
  private configFor = '';

  constructor(private readonly host: TrainHost) {
    this.methodSel.replaceChildren(
      ...methodChoices().map((m) => {
        const o = document.createElement('option');
        o.value = m.value;
        o.textContent = m.label;
        return o;
      }),
    );
    this.methodSel.value = DEFAULT_METHOD;
    this.useBundled();
    $<HTMLButtonElement>('#train-bundled').addEventListener('click', () => this.useBundled());
    this.dataEl.addEventListener('input', () => {
      this.source = 'pasted data';
    });
    this.methodSel.addEventListener('change', () => this.refreshConfig(true));
    const fileEl = $<HTMLInputElement>('#train-file');
    fileEl.addEventListener('change', async () => {
      const f = fileEl.files?.[0];
      if (f) await this.useFile(f);
      fileEl.value = '';
    });
    const drop = $<HTMLDivElement>('#train-drop');
    drop.addEventListener('dragover', (e) => {
      e.preventDefault();
      drop.classList.add('over');
    });
    drop.addEventListener('dragleave', () => drop.classList.remove('over'));
    drop.addEventListener('drop', async (e) => {
      e.preventDefault();
      drop.classList.remove('over');
      const f = e.dataTransfer?.files[0];
      if (f) await this.useFile(f);
    });
    this.startBtn.addEventListener('click', () => void this.train());
    this.cancelBtn.addEventListener('click', () => {
      this.trainer?.cancel();
      this.cancelBtn.disabled = true;
    });
  }

  /** The model is ready: training can start; the config field follows the model's defaults. */
  ready(): void {
    this.startBtn.disabled = this.trainer !== undefined;
    this.refreshConfig(false);
  }

  /** The WebGPU EP is offered when navigator.gpu gives an adapter (else disabled with the reason). */
  setWebGpu(why: string): void {
    const opt = this.deviceSel.querySelector<HTMLOptionElement>('option[value=webgpu]')!;
    opt.disabled = why !== '';
    opt.textContent = why ? `ORT-web WebGPU (unavailable: ${why})` : 'ORT-web WebGPU EP';
  }

  private useBundled(): void {
    this.dataEl.value = bundledJsonl();
    this.formatSel.value = 'auto';
    this.source = `bundled dataset (${bundledDataset().length} rows)`;
  }

  private async useFile(f: File): Promise<void> {
    this.dataEl.value = await f.text();
    this.source = f.name;
    this.formatSel.value = /\.csv$/i.test(f.name) ? 'csv' : /\.jsonl?$/i.test(f.name) ? 'jsonl' : 'auto';
  }

  /** The config field: the model's starting config for the method (manifest), unless the user edited it for this method. */
  private refreshConfig(methodChanged: boolean): void {
    const m = this.host.model();
    const method = this.methodSel.value;
    if (!methodChanged && this.configFor === method && this.configEl.dataset.model === m?.id) return;
    this.configEl.value = JSON.stringify(m?.methodConfigs[method] ?? {});
    this.configEl.dataset.model = m?.id ?? '';
    this.configFor = method;
  }

  private showError(msg: string | null): void {
    this.errorEl.hidden = msg === null;
    this.errorEl.textContent = msg ?? '';
  }

  private setState(state: string, text: string): void {
    this.stateEl.dataset.state = state;
    this.stateEl.textContent = text;
  }

  async train(): Promise<void> {
    if (this.trainer) return;
    this.showError(null);
    this.startBtn.disabled = true;
    this.host.setBusy(true);
    this.chartEl.dataset.losses = '[]';
    this.chartEl.replaceChildren();
    let trainer: Trainer | undefined;
    try {
      const model = this.host.model();
      if (!model) throw new PlaygroundFileError('a model is loading: train when it is ready');
      const settings = parseTrainSettings({
        method: this.methodSel.value,
        config: this.configEl.value,
        epochs: $<HTMLInputElement>('#train-epochs').value,
        batchSize: $<HTMLInputElement>('#train-batch').value,
        learningRate: $<HTMLInputElement>('#train-lr').value,
        seed: $<HTMLInputElement>('#train-seed').value,
      });
      const examples = checkLabels(parseTrainingData(this.dataEl.value, this.formatSel.value as DataFormat, this.source), model.labels, this.source);
      const device = this.deviceSel.value as 'wasm' | 'webgpu';
      const file = trainingFileFor(model.dtype);
      this.setState('building', `building the training graph of ${model.id} (${file}) on ${device}…`);
      const [onnx, configBytes] = await Promise.all([fetchBytes(this.host.fileUrl(file), TRAIN_MODEL_MAX_BYTES), fetchBytes(this.host.fileUrl('config.json'), 1024 * 1024)]);
      const config = JSON.parse(new TextDecoder().decode(configBytes)) as Record<string, unknown>;
      const t0 = performance.now();
      trainer = await createTrainer(
        { onnx, config },
        {
          method: settings.method,
          config: settings.config,
          ort: yieldingOrt(ort as unknown as OrtLike),
          seed: settings.seed,
          tokenize: (text) => this.host.tokenize(text),
          // No fused contrib ops (autodiff's TRAINING_SESSION_OPTIONS), on the chosen EP.
          sessionOptions: { executionProviders: [device], graphOptimizationLevel: 'basic' },
        },
      );
      this.trainer = trainer;
      const buildMs = performance.now() - t0;
      this.cancelBtn.disabled = false;
      this.progressEl.hidden = false;
      const losses: number[] = [];
      let total = 0;
      let drawn = 0;
      let frame = 0;
      const draw = (): void => {
        frame = 0;
        drawn = losses.length;
        this.chartEl.replaceChildren(lossChart(lossPoints(losses), total));
        this.chartEl.dataset.losses = JSON.stringify(losses);
      };
      this.setState('training', `training ${settings.method} on ${examples.length} examples (graph built in ${(buildMs / 1000).toFixed(1)} s)…`);
      const r = await trainer.train(examples, {
        epochs: settings.epochs,
        batch_size: settings.batchSize,
        learning_rate: settings.learningRate,
        progress_callback: (p) => {
          if (p.status !== 'step') return;
          total = p.total_steps;
          losses.push(p.loss!);
          this.progressEl.max = total;
          this.progressEl.value = p.step;
          this.setState('training', `training ${settings.method}: ${formatTrainProgress(p.step, total, p.loss, p.elapsed)}`);
          // Redraw once per animation frame at most (steps of a tiny model take milliseconds).
          if (!frame) frame = requestAnimationFrame(draw);
        },
      });
      if (frame) cancelAnimationFrame(frame);
      if (drawn !== losses.length || losses.length === 0) draw();
      if (r.stopped === 'cancelled') {
        this.setState('cancelled', `cancelled after ${r.steps} step${r.steps === 1 ? '' : 's'}; no adapter added`);
        return;
      }
      const { configJson, safetensors } = adapterToFiles(trainer.adapter);
      const files = { config: new TextEncoder().encode(configJson), safetensors };
      const name = uniqueName(`trained-${settings.method.toLowerCase()}`, this.host.takenNames());
      await this.host.addTrained(name, files);
      this.offerDownloads(name, files);
      this.stateEl.dataset.adapter = name;
      this.setState('done', `trained ${name}: ${r.steps} steps in ${r.seconds.toFixed(1)} s, loss ${losses[0]!.toFixed(4)} → ${losses[losses.length - 1]!.toFixed(4)}; added to the adapter list`);
    } catch (e) {
      this.showError(describeError(e));
      this.setState('error', 'failed');
    } finally {
      this.trainer = undefined;
      await trainer?.release().catch(() => undefined);
      this.cancelBtn.disabled = true;
      this.progressEl.hidden = true;
      this.startBtn.disabled = false;
      this.host.setBusy(false);
    }
  }

  /** The adapter's PEFT folder as two downloads (blob URLs, revoked when the next run replaces them). */
  private offerDownloads(name: string, files: { config: Uint8Array; safetensors: Uint8Array }): void {
    for (const u of this.downloads) URL.revokeObjectURL(u);
    this.downloads = [];
    const link = (fileName: string, bytes: Uint8Array, type: string): HTMLAnchorElement => {
      const a = document.createElement('a');
      a.href = URL.createObjectURL(new Blob([bytes as Uint8Array<ArrayBuffer>], { type }));
      this.downloads.push(a.href);
      a.download = fileName;
      a.dataset.file = fileName;
      a.textContent = `${fileName} (${formatBytes(bytes.length)})`;
      return a;
    };
    this.resultEl.replaceChildren(
      `Download ${name} (a PEFT adapter folder: put both files in one folder): `,
      link('adapter_config.json', files.config, 'application/json'),
      ' · ',
      link('adapter_model.safetensors', files.safetensors, 'application/octet-stream'),
    );
    this.resultEl.dataset.adapter = name;
  }
}
