/**
 * The playground page: a generated tiny DistilBERT classifier loaded by transformers.js (ORT-web,
 * wasm) through the TensorPEFT plugin, the shipped adapters (one per method), one-click / keyboard
 * swaps, a side-by-side comparison, and adapters dropped by the user.
 */
import { AutoModelForSequenceClassification, AutoTokenizer, env } from '@huggingface/transformers';
import { adapterFromBytes, adapterStats, fetchBytes as fetchCapped, deltaW, JsBackend, materializeAdapter, type Adapter, type Backend, type ModuleUpdate } from '@tensorpeft/core';
import { createWasmBackend } from '@tensorpeft/kernels-wasm';
import { WebGpuBackend } from '@tensorpeft/kernels-wgsl';
import { heatmap, methodsChart } from './charts.js';
import { adapterStructure, structureSvg } from './structure.js';
import { from_pretrained } from '@tensorpeft/transformers-plugin';
import {
  describeError,
  formatBytes,
  formatCount,
  formatMs,
  parseManifest,
  resolveAdapterUrl,
  URL_MAX_BYTES,
  pickAdapterFiles,
  rankLabels,
  shortcutChoice,
  uniqueName,
  type Manifest,
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
  fileBytes: number;
  loadMs: number;
  swapMs?: number;
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
const sources = new Map<string, { config: Uint8Array; safetensors: Uint8Array; source: string }>();
const dwChart = $<HTMLDivElement>('#dw-chart');
let manifest: Manifest;
let labels: string[] = [];
let modelId = '';
let model: Model;
let tokenizer: Model;
let active = 'base';
let runSeq = 0;

function setStatus(state: string, text: string): void {
  statusEl.dataset.state = state;
  statusEl.textContent = text;
}

function showError(msg: string | null): void {
  errorEl.hidden = msg === null;
  errorEl.textContent = msg ?? '';
}

async function fetchBytes(url: URL): Promise<Uint8Array> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url.pathname}: HTTP ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}

/** transformers.js in the browser asks its cache for local paths; the plugin reads the original
 * bytes through a previous custom cache, so give it one that fetches from this app. */
function installFetchCache(): void {
  env.useCustomCache = true;
  env.customCache = {
    async match(key: string) {
      const url = new URL(key, location.href);
      // Hub files (a Hub model id, online) are fetched too: the plugin reads the model's bytes here.
      if (url.origin !== location.origin && !env.allowRemoteModels) return undefined;
      const res = await fetch(url);
      return res.ok ? res : undefined;
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
  void run().catch((e) => showError(describeError(e)));
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
      for (const v of [r.name, r.method, String(r.modules), String(r.rank), formatCount(r.trainable), formatCount(r.frozen), formatCount(r.stored), formatBytes(r.fileBytes), formatMs(r.loadMs), formatMs(r.swapMs)]) {
        const td = document.createElement('td');
        td.textContent = v;
        tr.append(td);
      }
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
  const svg = new DOMParser().parseFromString(structureSvg(adapterStructure(parsed.plan.params)), 'image/svg+xml').documentElement;
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
    else if (name === 'webgpu') b = WebGpuBackend.create();
    else return Promise.reject(new Error(`unknown backend ${name}`));
    backends.set(name, b);
    b.catch(() => backends.delete(name));
  }
  return b;
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
      const adapter = await Promise.race([gpu.requestAdapter(), new Promise<null>((r) => setTimeout(() => r(null), 5000))]);
      if (!adapter) why = 'navigator.gpu gave no adapter (WebGPU disabled or no usable GPU)';
    } catch (e) {
      why = `requestAdapter failed: ${(e as Error).message}`;
    }
  }
  opt.disabled = why !== '';
  opt.textContent = why ? 'WebGPU (unavailable)' : 'WebGPU (WGSL kernels)';
  note.dataset.webgpu = why ? 'unavailable' : 'available';
  note.textContent = why ? `WebGPU unavailable: ${why}.` : '';
}

/** Switch the materialization backend: every adapter is materialized again on it (load times update). */
async function switchBackend(name: string): Promise<void> {
  backendSel.disabled = true;
  backendEl.dataset.state = 'switching';
  try {
    backend = await getBackend(name);
    backendName = name;
    updatesCache.clear();
    for (const [n, src] of sources) await addAdapter(n, src.config, src.safetensors, src.source, true);
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
    await run();
  }
}

/** Parse (for the stats), then load into the model. Throws core's / the plugin's typed errors. */
async function addAdapter(name: string, config: Uint8Array, safetensors: Uint8Array, source: string, replace = false): Promise<void> {
  const t = performance.now();
  const parsed = adapterFromBytes({ config, safetensors, source });
  await model.load_adapter(name, parsed, { backend, replace });
  sources.set(name, { config, safetensors, source });
  const loadMs = performance.now() - t;
  const s = adapterStats(parsed);
  parsedAdapters.set(name, parsed);
  rows.set(name, { name, method: s.peft_type, modules: s.modules, rank: s.rank, trainable: s.trainable, frozen: s.frozen, stored: s.stored, fileBytes: safetensors.length, loadMs });
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
    const name = uniqueName(picked.name, rows.keys());
    await addAdapter(name, picked.config, picked.safetensors, picked.source);
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
      fetchCapped(new URL('adapter_config.json', folder).href, URL_MAX_BYTES),
      fetchCapped(new URL('adapter_model.safetensors', folder).href, URL_MAX_BYTES),
    ]);
    const name = uniqueName(suggested, rows.keys());
    await addAdapter(name, config, safetensors, folder);
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

/**
 * Load the classifier: the embedded one (offline, from generated/models/) or a Hub model id
 * (needs the network). Adapters already loaded are loaded again onto it; those that do not fit
 * the new model are dropped, with core's typed error shown.
 */
async function loadModel(id: string, remote: boolean): Promise<number> {
  env.allowRemoteModels = remote;
  const t = performance.now();
  const tok = await AutoTokenizer.from_pretrained(id);
  const m = await from_pretrained(env as never, AutoModelForSequenceClassification as never, id, { dtype: 'fp32', device: 'wasm' } as never);
  const ms = performance.now() - t;
  tokenizer = tok;
  model = m;
  modelId = id;
  const id2label = (m as Model).config?.id2label as Record<string, string> | undefined;
  labels = id === manifest.model.id ? manifest.model.labels : id2label ? Object.keys(id2label).sort((a, b) => Number(a) - Number(b)).map((k) => id2label[k]!) : [];
  return ms;
}

async function switchModel(input: string): Promise<void> {
  const state = $<HTMLSpanElement>('#model-state');
  const id = input.trim() || manifest.model.id;
  const remote = id !== manifest.model.id;
  showError(null);
  if (remote && !navigator.onLine) {
    state.dataset.state = 'error';
    state.textContent = 'offline: only the embedded model is available';
    return;
  }
  state.dataset.state = 'loading';
  state.textContent = `loading ${id}…`;
  try {
    const ms = await loadModel(id, remote);
    const errors: string[] = [];
    for (const [n, src] of [...sources]) {
      try {
        await addAdapter(n, src.config, src.safetensors, src.source, true);
      } catch (e) {
        errors.push(`${n}: ${describeError(e)}`);
        sources.delete(n);
        rows.delete(n);
        parsedAdapters.delete(n);
      }
    }
    updatesCache.clear();
    if (!rows.has(active)) active = 'base';
    if (active === 'base') model.disable_adapters();
    else model.set_adapter(active);
    if (errors.length) showError(`Adapters that do not fit ${id} were dropped:\n${errors.join('\n')}`);
    state.dataset.state = 'done';
    state.dataset.model = id;
    state.textContent = `${id} loaded in ${formatMs(ms)}`;
    renderChoices();
    await run();
  } catch (e) {
    showError(describeError(e));
    state.dataset.state = 'error';
    state.textContent = `failed; still using ${modelId}`;
    env.allowRemoteModels = modelId !== manifest.model.id;
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

  manifest = parseManifest(await (await fetch(new URL('adapters/index.json', generated))).json());
  const modelMs = await loadModel(manifest.model.id, false);
  for (const a of manifest.adapters) {
    setStatus('loading', `Loading adapter ${a.name}…`);
    const dir = new URL(a.path, generated);
    const [cfg, st] = await Promise.all([fetchBytes(new URL('adapter_config.json', dir)), fetchBytes(new URL('adapter_model.safetensors', dir))]);
    await addAdapter(a.name, cfg, st, dir.pathname);
  }
  adapterSel.disabled = false;
  compareSel.disabled = false;
  backendSel.disabled = false;
  backendEl.textContent = `active: ${backend.name ?? backendName}`;
  backendEl.dataset.backend = backendName;
  await probeWebGpu();
  backendSel.addEventListener('change', () => void switchBackend(backendSel.value));
  renderChoices();
  await run();
  setStatus('ready', `Ready: ${manifest.model.id} (${manifest.model.arch}, ORT-web wasm, ${wasm.numThreads} thread${wasm.numThreads === 1 ? '' : 's'}) loaded in ${formatMs(modelMs)}; ${rows.size} adapters.`);

  adapterSel.addEventListener('change', () => swap(adapterSel.value));
  dwSel.addEventListener('change', () => void renderDeltaW().catch((e) => showError(describeError(e))));
  compareSel.addEventListener('change', () => void run().catch((e) => showError(describeError(e))));
  let timer: ReturnType<typeof setTimeout> | undefined;
  textEl.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(() => void run().catch((e) => showError(describeError(e))), 150);
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
  const hubBtn = $<HTMLButtonElement>('#load-model');
  const hubState = $<HTMLSpanElement>('#model-state');
  const online = (): void => {
    hubBtn.disabled = false;
    hubEl.title = navigator.onLine ? '' : 'offline: only the embedded model works';
    if (hubState.dataset.state === '' || hubState.dataset.state === 'offline' || hubState.dataset.state === 'online') {
      hubState.dataset.state = navigator.onLine ? 'online' : 'offline';
      hubState.textContent = navigator.onLine ? `online: a Hub id is fetched from huggingface.co (now: ${modelId})` : `offline: using the embedded ${modelId}`;
    }
  };
  online();
  addEventListener('online', online);
  addEventListener('offline', online);
  hubBtn.addEventListener('click', () => void switchModel(hubEl.value));
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
}

main().catch((e) => {
  console.error(e);
  setStatus('error', `Failed to start: ${describeError(e)}`);
});
