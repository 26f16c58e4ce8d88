/**
 * The playground page: a generated tiny DistilBERT classifier loaded by transformers.js (ORT-web,
 * wasm) through the TensorPEFT plugin, the shipped adapters (one per method), one-click / keyboard
 * swaps, a side-by-side comparison, and adapters dropped by the user.
 */
import { AutoModelForSequenceClassification, AutoTokenizer, env } from '@huggingface/transformers';
import { adapterFromBytes, adapterStats, fetchBytes, deltaW, JsBackend, materializeAdapter, type Adapter, type Backend, type ModuleUpdate } from '@tensorpeft/core';
import { createWasmBackend } from '@tensorpeft/kernels-wasm';
import { WebGpuBackend } from '@tensorpeft/kernels-wgsl';
import { heatmap, methodsChart } from './charts.js';
import { adapterStructure, structureSvg } from './structure.js';
import { TrainPanel } from './train-panel.js';
import { from_pretrained } from '@tensorpeft/transformers-plugin';
import {
  adapterCandidates,
  checkHubId,
  hubFileUrl,
  PlaygroundFileError,
  describeError,
  DTYPES,
  dtypeUnavailable,
  formatBytes,
  formatProgress,
  onnxFileFor,
  formatCount,
  formatMs,
  parseManifest,
  resolveAdapterUrl,
  URL_MAX_BYTES,
  pickAdapterFiles,
  rankLabels,
  shortcutChoice,
  uniqueName,
  type Dtype,
  type GpuCaps,
  type Manifest,
  type ManifestModel,
  type NamedBytes,
} from './logic.js';

interface Row {
  name: string;
  method: string;
  modules: number;
  rank: number;
  trainable: number;
  frozen: number;
  stored: number;
  /** Parameters of modules_to_save tensors (whole base layers the adapter replaces), and their names. */
  heads: number;
  headNames: string[];
  fileBytes: number;
  loadMs: number;
  swapMs?: number;
  /** Where the adapter came from: generated here, a real PEFT file, a dropped file, a URL. */
  origin: string;
  /** How its A′/B′ reach the model: CPU tensors, or GPU buffers written by the WGSL kernels (no read-back). */
  feed: 'CPU' | 'GPU';
}

interface Source {
  config: Uint8Array;
  safetensors: Uint8Array;
  source: string;
  origin: string;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Model = any;

const $ = <T extends HTMLElement>(sel: string): T => document.querySelector(sel) as T;
const statusEl = $<HTMLParagraphElement>('#status');
const textEl = $<HTMLTextAreaElement>('#text');
const adapterSel = $<HTMLSelectElement>('#adapter');
const compareSel = $<HTMLSelectElement>('#compare');
const buttonsEl = $<HTMLDivElement>('#swap-buttons');
const outputEl = $<HTMLDivElement>('#output');
const compareEl = $<HTMLDivElement>('#compare-output');
const timingEl = $<HTMLParagraphElement>('#timing');
const tbody = $<HTMLTableSectionElement>('#adapters tbody');
const dropEl = $<HTMLDivElement>('#drop');
const fileEl = $<HTMLInputElement>('#file');
const errorEl = $<HTMLParagraphElement>('#error');

const generated = new URL('generated/', new URL(import.meta.env.BASE_URL, location.href));
const rows = new Map<string, Row>();
const parsedAdapters = new Map<string, Adapter>();
const updatesCache = new Map<string, Promise<ModuleUpdate[]>>();
const dwSel = $<HTMLSelectElement>('#dw-module');
const backendSel = $<HTMLSelectElement>('#backend');
const backendEl = $<HTMLSpanElement>('#backend-active');
const backends = new Map<string, Promise<Backend>>([['js', Promise.resolve(new JsBackend())]]);
let backendName = 'js';
let backend: Backend = new JsBackend();
/** Adapters loaded on the current model, and every adapter the user added (kept across model switches). */
const sources = new Map<string, Source>();
const userSources = new Map<string, Source>();
const shippedBytes = new Map<string, Promise<Source>>();
const modelSel = $<HTMLSelectElement>('#model');
const dtypeSel = $<HTMLSelectElement>('#dtype');
const modelState = $<HTMLSpanElement>('#model-state');
const progressEl = $<HTMLProgressElement>('#model-progress');
const hubBtnEl = $<HTMLButtonElement>('#load-model');
const dwChart = $<HTMLDivElement>('#dw-chart');
let manifest: Manifest;
let labels: string[] = [];
let modelId = '';
let modelDtype: Dtype = 'fp32';
let modelIsHub = false;
/** Where ONNX Runtime Web runs the model: its wasm (CPU) or WebGPU execution provider. */
type RunDevice = 'wasm' | 'webgpu';
let runDevice: RunDevice = 'wasm';
const deviceSel = $<HTMLSelectElement>('#device');
let model: Model;
let pendingRun: Promise<void> = Promise.resolve();
let tokenizer: Model;
let active = 'base';
let runSeq = 0;
/** What the WebGPU adapter offers (shader-f16), once probed; undefined without WebGPU. */
let gpuCaps: GpuCaps | undefined;

/** The Train panel; its host is this page's model, tokenizer and adapter list. */
const trainPanel = new TrainPanel({
  model: () => (modelState.dataset.state === 'loading' || !model ? undefined : { id: modelId, dtype: modelDtype, labels, methodConfigs: (modelIsHub ? undefined : embeddedModel(modelId))?.methodConfigs ?? {} }),
  fileUrl: (rel) => (modelIsHub ? hubFileUrl(env.remoteHost, env.remotePathTemplate, modelId, rel) : new URL(`models/${modelId}/${rel}`, generated).href),
  tokenize: (text) => Array.from((tokenizer(text) as { input_ids: { data: BigInt64Array } }).input_ids.data, Number),
  takenNames: () => [...rows.keys(), ...userSources.keys(), ...manifest.adapters.map((a) => a.name)],
  async addTrained(name, files) {
    const src = { ...files, source: 'trained in this browser', origin: 'trained' };
    await addAdapter(name, src);
    // Kept across model switches like the user's other adapters.
    userSources.set(name, src);
    renderChoices();
    if (started) showReady();
  },
  setBusy(busy) {
    modelSel.disabled = dtypeSel.disabled = deviceSel.disabled = hubBtnEl.disabled = busy;
  },
});

/** The page is interactive (set at the end of main(); model switches before that do not claim it). */
let started = false;

function showReady(): void {
  const threads = env.backends.onnx.wasm!.numThreads ?? 1;
  const where = runDevice === 'webgpu' ? 'ORT-web WebGPU' : `ORT-web wasm, ${threads} thread${threads === 1 ? '' : 's'}`;
  setStatus('ready', `Ready: ${modelId} (${modelDtype}${modelIsHub ? ', Hub' : ''}, ${where}); ${rows.size} adapter${rows.size === 1 ? '' : 's'}.`);
}

function setStatus(state: string, text: string): void {
  statusEl.dataset.state = state;
  statusEl.textContent = text;
}

function showError(msg: string | null): void {
  errorEl.hidden = msg === null;
  errorEl.textContent = msg ?? '';
}

/** Progress of the model file being downloaded (long for the base model: 255 MiB fp32). */
function showProgress(file: string, loaded: number, total: number): void {
  progressEl.hidden = false;
  if (total > 0) {
    progressEl.max = total;
    progressEl.value = loaded;
  } else progressEl.removeAttribute('value');
  progressEl.dataset.file = file;
  progressEl.dataset.loaded = String(loaded);
  modelState.textContent = `loading ${modelState.dataset.loading ?? ''}: ${formatProgress(file, loaded, total)}`;
}

/**
 * transformers.js in the browser asks its cache for local paths; the plugin reads the original
 * bytes through a previous custom cache, so give it one that fetches from this app (or from the
 * Hub when a Hub model is loading). ONNX files are streamed through a byte counter for progress.
 */
function installFetchCache(): void {
  env.useCustomCache = true;
  env.customCache = {
    async match(key: string) {
      const url = new URL(key, location.href);
      if (url.origin !== location.origin && !env.allowRemoteModels) return undefined;
      const res = await fetch(url);
      if (!res.ok) return undefined;
      if (!url.pathname.endsWith('.onnx') || !res.body) return res;
      const file = url.pathname.split('/').slice(-2).join('/');
      const total = Number(res.headers.get('content-length')) || 0;
      let loaded = 0;
      let shown = -1;
      const counted = res.body.pipeThrough(
        new TransformStream<Uint8Array, Uint8Array>({
          transform(chunk, ctl) {
            loaded += chunk.byteLength;
            // Redraw at most ~200 times per file.
            const step = total > 0 ? Math.floor((loaded / total) * 200) : Math.floor(loaded / 2 ** 20);
            if (step !== shown) {
              shown = step;
              showProgress(file, loaded, total);
            }
            ctl.enqueue(chunk);
          },
          flush() {
            showProgress(file, loaded, total || loaded);
          },
        }),
      );
      return new Response(counted, { status: res.status, headers: res.headers });
    },
    async put() {},
  };
}

function renderOutput(el: HTMLElement, name: string, logits: number[]): void {
  const ranked = rankLabels(logits, labels);
  el.dataset.adapter = name;
  el.dataset.logits = JSON.stringify(logits);
  el.dataset.top = ranked[0]?.label ?? '';
  el.replaceChildren(
    ...ranked.map((r) => {
      const row = document.createElement('div');
      row.className = 'bar';
      const label = document.createElement('span');
      label.textContent = r.label;
      const track = document.createElement('span');
      const fill = document.createElement('span');
      fill.className = 'fill';
      fill.style.display = 'block';
      fill.style.width = `${(r.prob * 100).toFixed(1)}%`;
      track.append(fill);
      const val = document.createElement('span');
      val.textContent = `${(r.prob * 100).toFixed(2)}%  (${r.logit.toFixed(4)})`;
      row.append(label, track, val);
      return row;
    }),
  );
}

async function logitsFor(adapter: string | null): Promise<number[]> {
  const inputs = tokenizer(textEl.value);
  const out = await model(inputs, { adapter });
  return Array.from(out.logits.data as Float32Array);
}

/** Run the active adapter (and the compared one) on the input text. */
async function run(): Promise<void> {
  const seq = ++runSeq;
  const name = active;
  outputEl.dataset.state = 'running';
  const t = performance.now();
  const logits = await logitsFor(name === 'base' ? null : name);
  const fwd = performance.now() - t;
  if (seq !== runSeq) return;
  renderOutput(outputEl, name, logits);
  $('#output-name').textContent = `(${name})`;
  const row = rows.get(name);
  timingEl.textContent = `forward ${formatMs(fwd)}${row?.swapMs !== undefined ? ` · swap ${formatMs(row.swapMs)}` : ''}`;
  const cmp = compareSel.value;
  if (cmp) {
    const other = await logitsFor(cmp === 'base' ? null : cmp);
    if (seq !== runSeq) return;
    renderOutput(compareEl, cmp, other);
    $('#compare-name').textContent = `(${cmp})`;
  } else {
    compareEl.replaceChildren();
    compareEl.dataset.adapter = '';
    $('#compare-name').textContent = '';
  }
  outputEl.dataset.state = 'done';
  outputEl.dataset.seq = String(seq);
}

function swap(name: string): void {
  if (name !== 'base' && !rows.has(name)) return;
  const t = performance.now();
  if (name === 'base') model.disable_adapters();
  else model.set_adapter(name);
  const dt = performance.now() - t;
  active = name;
  const row = rows.get(name);
  if (row) row.swapMs = dt;
  adapterSel.value = name;
  renderChoices();
  void startRun();
}

/** Run, remembering the promise so that a model is not disposed under a forward in flight. */
function startRun(): Promise<void> {
  const p = run().catch((e) => showError(describeError(e)));
  pendingRun = p;
  return p;
}

function renderChoices(): void {
  const names = ['base', ...rows.keys()];
  for (const sel of [adapterSel, compareSel]) {
    const keep = sel.value;
    const opts = sel === compareSel ? [['', '—'], ...names.map((n) => [n, n])] : names.map((n) => [n, n === 'base' ? 'base (no adapter)' : n]);
    sel.replaceChildren(
      ...opts.map(([v, l]) => {
        const o = document.createElement('option');
        o.value = v!;
        o.textContent = l!;
        return o;
      }),
    );
    sel.value = keep && (keep === '' || names.includes(keep)) ? keep : sel === adapterSel ? active : '';
  }
  adapterSel.value = active;
  buttonsEl.replaceChildren(
    ...names.map((n, i) => {
      const b = document.createElement('button');
      b.type = 'button';
      b.dataset.adapter = n;
      b.textContent = i < 10 ? `${i} · ${n}` : n;
      b.setAttribute('aria-pressed', String(n === active));
      b.addEventListener('click', () => swap(n));
      return b;
    }),
  );
  tbody.replaceChildren(
    ...[...rows.values()].map((r) => {
      const tr = document.createElement('tr');
      tr.dataset.adapter = r.name;
      if (r.name === active) tr.className = 'active';
      for (const v of [r.name, r.method, r.origin, String(r.modules), String(r.rank), formatCount(r.trainable), formatCount(r.frozen), formatCount(r.stored), formatCount(r.heads), formatBytes(r.fileBytes), r.feed, formatMs(r.loadMs), formatMs(r.swapMs)]) {
        const td = document.createElement('td');
        td.textContent = v;
        tr.append(td);
      }
      if (r.headNames.length) tr.children[8]!.setAttribute('title', `modules_to_save: ${r.headNames.join(', ')}`);
      return tr;
    }),
  );
  $('#methods-chart').replaceChildren(methodsChart([...rows.values()]));
  renderStructure();
  void renderDeltaW().catch((e) => showError(describeError(e)));
}

/** The active adapter's tensors from its plan: per-module vs shared, trainable vs frozen. */
function renderStructure(): void {
  const el = $<HTMLDivElement>('#structure');
  const parsed = parsedAdapters.get(active);
  $('#structure-adapter').textContent = active;
  el.dataset.adapter = active;
  if (!parsed) {
    el.textContent = 'base: no adapter tensors';
    return;
  }
  const svg = new DOMParser().parseFromString(structureSvg(adapterStructure(parsed.plan.params, parsed.extras)), 'image/svg+xml').documentElement;
  el.replaceChildren(document.importNode(svg, true));
}

/** Heatmap of ΔW = s·B′A′ᵀ ([out, in]) of the active adapter's chosen module. */
async function renderDeltaW(): Promise<void> {
  const name = active;
  $('#dw-adapter').textContent = name;
  const parsed = parsedAdapters.get(name);
  if (!parsed) {
    dwSel.replaceChildren();
    dwChart.dataset.module = '';
    dwChart.textContent = 'base: no ΔW';
    return;
  }
  let p = updatesCache.get(name);
  if (!p) updatesCache.set(name, (p = materializeAdapter(parsed, backend)));
  const updates = await p;
  if (active !== name) return;
  const keep = dwSel.value;
  dwSel.replaceChildren(
    ...updates.map((u) => {
      const o = document.createElement('option');
      o.value = u.path;
      o.textContent = u.path;
      return o;
    }),
  );
  dwSel.value = updates.some((u) => u.path === keep) ? keep : (updates[0]?.path ?? '');
  const u = updates.find((x) => x.path === dwSel.value);
  if (!u) return;
  dwChart.replaceChildren(heatmap(deltaW(u), u.m, u.n, `ΔW ${u.m}×${u.n} (ρ = ${u.rho})`));
  dwChart.dataset.module = u.path;
}

function getBackend(name: string): Promise<Backend> {
  let b = backends.get(name);
  if (!b) {
    if (name === 'wasm') b = createWasmBackend();
    // On ORT's own GPUDevice when the model runs on WebGPU: adapters are then GPU-fed (buffers
    // of one device cannot be bound by another).
    else if (name === 'webgpu') {
      gpuBackendOnOrt = runDevice === 'webgpu';
      b = gpuBackendOnOrt ? ortGpuDevice().then((device) => WebGpuBackend.create({ device })) : WebGpuBackend.create();
    }
    else return Promise.reject(new Error(`unknown backend ${name}`));
    backends.set(name, b);
    b.catch(() => backends.delete(name));
  }
  return b;
}

/** The GPUDevice of ONNX Runtime Web's WebGPU EP (exists once a WebGPU session was created). */
function ortGpuDevice(): Promise<WebGpuBackend['device']> {
  return Promise.resolve((env.backends.onnx as unknown as { webgpu: { device: WebGpuBackend['device'] | Promise<WebGpuBackend['device']> } }).webgpu.device);
}

/** Whether the WGSL backend was made on ORT's GPUDevice (which ORT destroys with its last WebGPU session). */
let gpuBackendOnOrt = false;

/**
 * The model now runs on `runDevice`: the WGSL backend (when one was made) must live on ORT's
 * GPUDevice while the model runs on WebGPU (so that adapters can be GPU-fed), and on a device of
 * its own otherwise (ORT destroys its device with its last WebGPU session). Made again when not.
 */
async function alignGpuBackend(): Promise<void> {
  const current = backends.get('webgpu');
  if (!current) return;
  const b = (await current.catch(() => undefined)) as WebGpuBackend | undefined;
  const device = runDevice === 'webgpu' ? await ortGpuDevice() : undefined;
  if (b && (device ? b.device === device : !gpuBackendOnOrt)) return;
  const next = device ? WebGpuBackend.create({ device }) : WebGpuBackend.create();
  gpuBackendOnOrt = device !== undefined;
  backends.set('webgpu', next);
  next.catch(() => backends.delete('webgpu'));
  if (backendName === 'webgpu') backend = await next;
  b?.destroy();
}

/** The backend that GPU-feeds adapters: the WGSL one, on ORT's device, while the model runs on WebGPU. */
async function gpuFeeder(): Promise<WebGpuBackend | null> {
  if (runDevice !== 'webgpu' || backendName !== 'webgpu') return null;
  const b = backend as WebGpuBackend;
  return b.device === (await ortGpuDevice()) ? b : null;
}

/** What the active backend runs on, e.g. ` (google swiftshader …, software)` for WebGPU. */
function describeBackend(b: Backend): string {
  const gpu = b as Partial<WebGpuBackend>;
  return typeof gpu.adapterDescription === 'string' ? ` (${gpu.adapterDescription || 'GPU'}${gpu.software ? ', software' : ''})` : '';
}

/** Enable the WebGPU option only when navigator.gpu hands out an adapter; say why not otherwise. */
async function probeWebGpu(): Promise<void> {
  const opt = backendSel.querySelector<HTMLOptionElement>('option[value=webgpu]')!;
  const note = $<HTMLSpanElement>('#webgpu-note');
  const gpu = (navigator as Navigator & { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
  let why = '';
  if (!gpu) why = 'this browser has no WebGPU (navigator.gpu is missing; Chromium needs https or localhost)';
  else {
    try {
      const adapter = (await Promise.race([gpu.requestAdapter(), new Promise<null>((r) => setTimeout(() => r(null), 5000))])) as { features?: { has(f: string): boolean } } | null;
      if (!adapter) why = 'navigator.gpu gave no adapter (WebGPU disabled or no usable GPU)';
      else gpuCaps = { shaderF16: adapter.features?.has('shader-f16') === true };
    } catch (e) {
      why = `requestAdapter failed: ${(e as Error).message}`;
    }
  }
  opt.disabled = why !== '';
  opt.textContent = why ? 'WebGPU (unavailable)' : 'WebGPU (WGSL kernels)';
  const dev = deviceSel.querySelector<HTMLOptionElement>('option[value=webgpu]')!;
  dev.disabled = why !== '';
  dev.textContent = why ? 'ORT-web WebGPU (unavailable)' : 'ORT-web WebGPU EP';
  note.dataset.webgpu = why ? 'unavailable' : 'available';
  note.textContent = why ? `WebGPU unavailable: ${why}.` : '';
  trainPanel.setWebGpu(why);
}

/** Switch the materialization backend: every adapter is materialized again on it (load times update). */
async function switchBackend(name: string): Promise<void> {
  backendSel.disabled = true;
  backendEl.dataset.state = 'switching';
  try {
    backend = await getBackend(name);
    backendName = name;
    updatesCache.clear();
    for (const [n, src] of sources) await addAdapter(n, src, true);
    if (active !== 'base') model.set_adapter(active);
    showError(null);
  } catch (e) {
    showError(describeError(e));
    backendSel.value = backendName;
  } finally {
    backendSel.disabled = false;
    backendEl.textContent = `active: ${backend.name ?? backendName}${describeBackend(backend)}`;
    backendEl.dataset.state = 'done';
    backendEl.dataset.backend = backendName;
    renderChoices();
    await startRun();
  }
}

/** Parse (for the stats), then load into the model. Throws core's / the plugin's typed errors. */
async function addAdapter(name: string, src: Source, replace = false): Promise<void> {
  const { config, safetensors, source, origin } = src;
  const t = performance.now();
  const parsed = adapterFromBytes({ config, safetensors, source });
  const gpu = await gpuFeeder();
  await model.load_adapter(parsed, { adapter_name: name, backend, replace, gpu });
  sources.set(name, src);
  const loadMs = performance.now() - t;
  const s = adapterStats(parsed);
  parsedAdapters.set(name, parsed);
  rows.set(name, { name, method: s.peft_type, modules: s.modules, rank: s.rank, trainable: s.trainable, frozen: s.frozen, stored: s.stored, heads: s.modules_to_save.reduce((a, h) => a + h.params, 0), headNames: s.modules_to_save.map((h) => h.name), fileBytes: safetensors.length, loadMs, origin, feed: gpu ? 'GPU' : 'CPU' });
}

async function readFiles(list: Iterable<File>): Promise<NamedBytes[]> {
  const out: NamedBytes[] = [];
  for (const f of list) out.push({ name: f.webkitRelativePath || f.name, bytes: new Uint8Array(await f.arrayBuffer()) });
  return out;
}

/** Files from a drop, descending into a dropped folder. */
async function droppedFiles(dt: DataTransfer): Promise<NamedBytes[]> {
  const entries = [...dt.items].map((i) => i.webkitGetAsEntry?.()).filter((e): e is FileSystemEntry => !!e);
  if (entries.length === 0 || entries.every((e) => e.isFile)) return readFiles(dt.files);
  const files: File[] = [];
  const names: string[] = [];
  const walk = async (e: FileSystemEntry, prefix: string): Promise<void> => {
    if (e.isFile) {
      files.push(await new Promise<File>((res, rej) => (e as FileSystemFileEntry).file(res, rej)));
      names.push(prefix + e.name);
    } else if (e.isDirectory) {
      const reader = (e as FileSystemDirectoryEntry).createReader();
      const kids = await new Promise<FileSystemEntry[]>((res, rej) => reader.readEntries(res, rej));
      for (const k of kids) await walk(k, `${prefix}${e.name}/`);
    }
  };
  for (const e of entries) await walk(e, '');
  return Promise.all(files.map(async (f, i) => ({ name: names[i]!, bytes: new Uint8Array(await f.arrayBuffer()) })));
}

async function loadUserFiles(files: NamedBytes[]): Promise<void> {
  showError(null);
  dropEl.dataset.state = 'loading';
  try {
    const picked = pickAdapterFiles(files);
    const name = uniqueName(picked.name, [...rows.keys(), ...userSources.keys(), ...manifest.adapters.map((a) => a.name)]);
    const src = { config: picked.config, safetensors: picked.safetensors, source: picked.source, origin: 'file' };
    await addAdapter(name, src);
    userSources.set(name, src);
    renderChoices();
    swap(name);
    dropEl.dataset.state = 'loaded';
  } catch (e) {
    showError(describeError(e));
    dropEl.dataset.state = 'error';
  }
}

/** Download an adapter folder by URL (core's size-capped fetch), then load it like a dropped one. */
async function loadFromUrl(input: string): Promise<void> {
  const state = $<HTMLSpanElement>('#url-state');
  showError(null);
  state.dataset.state = 'loading';
  state.textContent = 'downloading…';
  try {
    const { folder, name: suggested } = resolveAdapterUrl(input, location.href);
    const [config, safetensors] = await Promise.all([
      fetchBytes(new URL('adapter_config.json', folder).href, URL_MAX_BYTES),
      fetchBytes(new URL('adapter_model.safetensors', folder).href, URL_MAX_BYTES),
    ]);
    const name = uniqueName(suggested, [...rows.keys(), ...userSources.keys(), ...manifest.adapters.map((a) => a.name)]);
    const src = { config, safetensors, source: folder, origin: 'url' };
    await addAdapter(name, src);
    userSources.set(name, src);
    renderChoices();
    swap(name);
    state.dataset.state = 'loaded';
    state.dataset.adapter = name;
    state.textContent = `loaded as ${name} (${formatBytes(config.length + safetensors.length)})`;
  } catch (e) {
    showError(describeError(e));
    state.dataset.state = 'error';
    state.textContent = 'failed';
  }
}

/** A shipped adapter's two files, fetched once (the real adapter only when its model is used). */
function shippedSource(name: string): Promise<Source> {
  let p = shippedBytes.get(name);
  if (!p) {
    const a = manifest.adapters.find((x) => x.name === name)!;
    const dir = new URL(a.path, generated);
    p = Promise.all([fetchBytes(new URL('adapter_config.json', dir).href, URL_MAX_BYTES), fetchBytes(new URL('adapter_model.safetensors', dir).href, URL_MAX_BYTES)]).then(([config, safetensors]) => ({
      config,
      safetensors,
      source: dir.pathname,
      origin: a.real ? 'real PEFT' : 'generated',
    }));
    shippedBytes.set(name, p);
    p.catch(() => shippedBytes.delete(name));
  }
  return p;
}

function embeddedModel(id: string): ManifestModel | undefined {
  return manifest.models.find((m) => m.id === id);
}

/**
 * Load a classifier (an embedded one from generated/models/, or a Hub id: needs the network) and
 * its tokenizer, without touching the current one (a failed load leaves it in use).
 */
async function loadModel(id: string, dtype: Dtype, hub: boolean, device: RunDevice): Promise<{ model: Model; tokenizer: Model; labels: string[]; ms: number }> {
  env.allowRemoteModels = hub;
  env.allowLocalModels = !hub;
  const t = performance.now();
  try {
    if (hub) {
      // transformers.js reports a missing repo as a TypeError deep inside; ask for config.json first.
      const url = hubFileUrl(env.remoteHost, env.remotePathTemplate, checkHubId(id), 'config.json');
      let res: Response;
      try {
        res = await fetch(url);
      } catch (e) {
        throw new PlaygroundFileError(`Hub model ${id}: ${url} could not be fetched (${(e as Error).message})${navigator.onLine ? '' : '; the browser is offline'}`);
      }
      if (!res.ok) throw new PlaygroundFileError(`Hub model ${id}: ${url} answered HTTP ${res.status} (wrong id, a private repo, or not a transformers.js model)`);
    }
    const tok = await AutoTokenizer.from_pretrained(id);
    // `webgpu: true` tells the plugin its sessions are on the WebGPU EP (ρ = 1 zero feeds for "no adapter").
    const m = await from_pretrained(env as never, AutoModelForSequenceClassification as never, id, { dtype, device, ...(device === 'webgpu' ? { webgpu: true } : {}) } as never);
    const embedded = hub ? undefined : embeddedModel(id);
    const id2label = (m as Model).config?.id2label as Record<string, string> | undefined;
    const labels = embedded
      ? embedded.labels
      : id2label
        ? Object.keys(id2label)
            .sort((a, b) => Number(a) - Number(b))
            .map((k) => id2label[k]!)
        : [];
    return { model: m, tokenizer: tok, labels, ms: performance.now() - t };
  } finally {
    // Back to what the current model needs (its adapters' URLs are fetched by the app itself).
    env.allowRemoteModels = modelIsHub;
    env.allowLocalModels = true;
  }
}

/**
 * Make `id` the model: load it, then load the adapters that belong on it (the shipped ones made
 * for it — every shipped one on a Hub model — and those the user added). Adapters that do not fit
 * are listed with the plugin's typed error and kept for the next model switch; the old model is
 * disposed. A failure leaves the current model and its adapters in use.
 */
async function switchModel(id: string, dtype: Dtype, hub: boolean, device: RunDevice = runDevice): Promise<boolean> {
  showError(null);
  modelState.dataset.state = 'loading';
  modelState.dataset.loading = `${id} (${dtype}, ${device})`;
  modelState.textContent = `loading ${id} (${dtype}) on ${device}…`;
  // One switch at a time: the pickers and the Hub button wait for this one.
  modelSel.disabled = dtypeSel.disabled = deviceSel.disabled = hubBtnEl.disabled = true;
  try {
    const blocked = dtypeUnavailable(dtype, device, gpuCaps);
    if (blocked) throw new PlaygroundFileError(`${dtype} weights cannot run on ORT-web ${device}: ${blocked}`);
    const loaded = await loadModel(id, dtype, hub, device);
    const old = model;
    await pendingRun;
    model = loaded.model;
    tokenizer = loaded.tokenizer;
    labels = loaded.labels;
    modelId = id;
    modelDtype = dtype;
    modelIsHub = hub;
    runDevice = device;
    env.allowRemoteModels = hub;
    // Unloading releases GPU-fed adapters' buffers; then the old sessions go.
    if (old) {
      for (const a of old.list_adapters() as { name: string }[]) old.unload_adapter(a.name);
      await old.dispose?.();
    }
    await alignGpuBackend();
    sources.clear();
    rows.clear();
    parsedAdapters.clear();
    updatesCache.clear();
    const skipped: string[] = [];
    const names = adapterCandidates(manifest, id, hub, userSources.keys());
    for (const [i, n] of names.entries()) {
      modelState.textContent = `loading adapter ${n} (${i + 1}/${names.length}) onto ${id}…`;
      try {
        await addAdapter(n, userSources.get(n) ?? (await shippedSource(n)));
      } catch (e) {
        skipped.push(`${n}: ${describeError(e)}`);
      }
    }
    if (!rows.has(active)) active = 'base';
    if (active === 'base') model.disable_adapters();
    else model.set_adapter(active);
    const note = $<HTMLParagraphElement>('#skipped');
    note.hidden = skipped.length === 0;
    note.dataset.count = String(skipped.length);
    note.textContent = skipped.length ? `Not loaded on ${id} (kept; tried again on the next model):\n${skipped.join('\n')}` : '';
    modelState.dataset.state = 'done';
    modelState.dataset.model = id;
    modelState.dataset.dtype = dtype;
    modelState.dataset.device = device;
    modelState.textContent = `${id} (${dtype}${hub ? ', Hub' : ''}, ${device}) loaded in ${formatMs(loaded.ms)}; ${rows.size} adapter${rows.size === 1 ? '' : 's'}`;
    const desc = hub ? `Hub model ${id}` : (embeddedModel(id)?.description ?? '');
    $('#model-desc').textContent = desc;
    modelSel.value = hub ? '' : id;
    renderDtypeChoices(hub ? undefined : id);
    dtypeSel.value = dtype;
    renderChoices();
    await startRun();
    if (started) showReady();
    trainPanel.ready();
    return true;
  } catch (e) {
    const msg = describeError(e);
    showError(!navigator.onLine && hub ? `offline: ${msg}` : msg);
    modelState.dataset.state = 'error';
    modelState.textContent = `failed; still using ${modelId || 'no model'}${modelId ? ` (${modelDtype}, ${runDevice})` : ''}`;
    modelSel.value = modelIsHub ? '' : modelId;
    dtypeSel.value = modelDtype;
    deviceSel.value = runDevice;
    return false;
  } finally {
    progressEl.hidden = true;
    modelSel.disabled = dtypeSel.disabled = deviceSel.disabled = false;
    hubBtnEl.disabled = false;
  }
}

/** Model and dtype pickers from the manifest (sizes of the ONNX files, so a user sees what a switch costs). */
function renderModelChoices(): void {
  modelSel.replaceChildren(
    ...manifest.models.map((m) => {
      const o = document.createElement('option');
      o.value = m.id;
      const n = manifest.adapters.filter((a) => a.model === m.id).length;
      o.textContent = `${m.id} — ${n} shipped adapter${n === 1 ? '' : 's'}${manifest.adapters.some((a) => a.model === m.id && a.real) ? ' (real PEFT)' : ''}`;
      return o;
    }),
    Object.assign(document.createElement('option'), { value: '', textContent: '(Hub model)', disabled: true }),
  );
  renderDtypeChoices(manifest.models[0]!.id);
}

/** Weights choices with the file sizes of the picked embedded model (a Hub model: sizes unknown). */
function renderDtypeChoices(id: string | undefined): void {
  const m = id === undefined ? undefined : embeddedModel(id);
  const keep = dtypeSel.value || 'fp32';
  const blocked: string[] = [];
  dtypeSel.replaceChildren(
    ...DTYPES.map((d) => {
      const o = document.createElement('option');
      o.value = d;
      const size = m?.dtypes[d];
      // Dtypes the EP in use cannot run stay listed, disabled, with the reason (in the note below too).
      const why = dtypeUnavailable(d, runDevice, gpuCaps);
      o.textContent = `${d} (${onnxFileFor(d)}${size === undefined ? '' : `, ${formatBytes(size)}`})${why ? ` — not on ${runDevice}` : ''}`;
      o.disabled = (m !== undefined && size === undefined) || why !== undefined;
      if (why && (m === undefined || size !== undefined)) blocked.push(`${d}: ${why}`);
      return o;
    }),
  );
  dtypeSel.value = keep;
  const note = $<HTMLParagraphElement>('#dtype-note');
  note.dataset.blocked = blocked.map((b) => b.split(':')[0]).join(',');
  note.textContent = blocked.length ? `Not on ORT-web ${runDevice}: ${blocked.join('; ')}.` : '';
}

/**
 * Adapters are materialized by the WASM kernels from the start (the JS reference backend stays one
 * choice away); when they cannot load here, the JS backend is kept and the page says why.
 */
async function useDefaultBackend(): Promise<void> {
  try {
    backend = await getBackend('wasm');
    backendName = 'wasm';
  } catch (e) {
    backendSel.value = 'js';
    showError(`WASM kernels unavailable, adapters are materialized by the JS reference backend: ${describeError(e)}`);
  }
}

async function main(): Promise<void> {
  env.allowLocalModels = true;
  env.allowRemoteModels = false;
  env.localModelPath = new URL('models/', generated).pathname;
  const wasm = env.backends.onnx.wasm!;
  wasm.wasmPaths = new URL('ort/', generated).href;
  wasm.numThreads = globalThis.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
  installFetchCache();
  await useDefaultBackend();

  manifest = parseManifest(await (await fetch(new URL('adapters/index.json', generated))).json());
  renderModelChoices();
  const first = manifest.models[0]!;
  setStatus('loading', `Loading ${first.id}…`);
  if (!(await switchModel(first.id, 'fp32', false))) throw new Error(`could not load the embedded model ${first.id}: ${errorEl.textContent}`);
  adapterSel.disabled = false;
  compareSel.disabled = false;
  backendSel.disabled = false;
  backendEl.textContent = `active: ${backend.name ?? backendName}`;
  backendEl.dataset.backend = backendName;
  await probeWebGpu();
  backendSel.addEventListener('change', () => void switchBackend(backendSel.value));
  modelSel.addEventListener('change', () => void switchModel(modelSel.value, dtypeSel.value as Dtype, false));
  dtypeSel.addEventListener('change', () => void switchModel(modelIsHub ? modelId : modelSel.value, dtypeSel.value as Dtype, modelIsHub));
  deviceSel.addEventListener('change', () => void switchModel(modelId, modelDtype, modelIsHub, deviceSel.value as RunDevice));

  adapterSel.addEventListener('change', () => swap(adapterSel.value));
  dwSel.addEventListener('change', () => void renderDeltaW().catch((e) => showError(describeError(e))));
  compareSel.addEventListener('change', () => void startRun());
  let timer: ReturnType<typeof setTimeout> | undefined;
  textEl.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(() => void startRun(), 150);
  });
  document.addEventListener('keydown', (e) => {
    if (e.target instanceof HTMLTextAreaElement || e.target instanceof HTMLInputElement || e.ctrlKey || e.metaKey || e.altKey) return;
    const choice = shortcutChoice(e.key, [...rows.keys()]);
    if (choice) swap(choice);
  });
  const urlEl = $<HTMLInputElement>('#adapter-url');
  const urlBtn = $<HTMLButtonElement>('#load-url');
  urlBtn.disabled = false;
  urlBtn.addEventListener('click', () => void loadFromUrl(urlEl.value));
  urlEl.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') void loadFromUrl(urlEl.value);
  });
  const hubEl = $<HTMLInputElement>('#hub-model');
  const loadHub = (): void => {
    const id = hubEl.value.trim();
    // Empty: back to the embedded model picked in the list.
    if (!id) void switchModel(modelSel.value || manifest.models[0]!.id, dtypeSel.value as Dtype, false);
    else if (embeddedModel(id)) void switchModel(id, dtypeSel.value as Dtype, false);
    else void switchModel(id, dtypeSel.value as Dtype, true);
  };

  hubBtnEl.addEventListener('click', loadHub);
  hubEl.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') loadHub();
  });
  const online = (): void => {
    $('#online').textContent = navigator.onLine ? 'online: a Hub id is fetched from huggingface.co' : 'offline: only the embedded models load';
  };
  online();
  addEventListener('online', online);
  addEventListener('offline', online);
  fileEl.addEventListener('change', async () => {
    await loadUserFiles(await readFiles(fileEl.files ?? []));
    fileEl.value = '';
  });
  dropEl.addEventListener('dragover', (e) => {
    e.preventDefault();
    dropEl.classList.add('over');
  });
  dropEl.addEventListener('dragleave', () => dropEl.classList.remove('over'));
  dropEl.addEventListener('drop', async (e) => {
    e.preventDefault();
    dropEl.classList.remove('over');
    if (e.dataTransfer) await loadUserFiles(await droppedFiles(e.dataTransfer));
  });
  started = true;
  showReady();
}

main().catch((e) => {
  console.error(e);
  setStatus('error', `Failed to start: ${describeError(e)}`);
});
