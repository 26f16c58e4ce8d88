// A transformers.js classifier in the browser with two TensorPEFT adapters: one from a relative URL
// on this site, one by Hub repo id. Swap, one call on another adapter, disable.
import { AutoModelForSequenceClassification, AutoTokenizer, env } from '@huggingface/transformers';
import '@tensorpeft/kernels-wasm/register'; // SIMD WebAssembly kernels for materializing adapters
import { from_pretrained } from '@tensorpeft/transformers-plugin';
import { errorClassNames } from './error-names';

const MODEL = 'tiny-distilbert'; // served from /models/tiny-distilbert/ (config, tokenizer, onnx/)
const LOCAL_ADAPTER = './adapters/lora'; // a PEFT adapter folder served next to the page
const HUB_ADAPTER = 'tensorpeft/tenslora-demo'; // a Hub repo id (`user/repo`), resolved like model ids

const statusEl = document.querySelector('#status')!;
const outEl = document.querySelector('#out')!;
const query = new URLSearchParams(location.search);

env.allowLocalModels = true; // off by default in browsers
env.localModelPath = '/models/';
env.backends.onnx.wasm!.wasmPaths = new URL('ort/', document.baseURI).href; // see scripts/copy-ort-files.mjs
// Hub ids (models and adapters) resolve against env.remoteHost, https://huggingface.co/ by default;
// `?hub=<url>` points them at a mirror (the CI test's local stand-in for the Hub).
const hub = query.get('hub');
if (hub) env.remoteHost = hub;

async function run(): Promise<Record<string, unknown>> {
  const model = await from_pretrained(env, AutoModelForSequenceClassification, MODEL);
  const tokenizer = await AutoTokenizer.from_pretrained(MODEL);
  const inputs = tokenizer(['i feel happy today', 'this is the worst day'], { padding: true });
  const logits = async (opts?: { adapter: string | null }): Promise<number[]> => Array.from((await model(inputs, opts)).logits.data as Float32Array);

  const base = await logits();
  await model.load_adapter(LOCAL_ADAPTER, { adapter_name: 'local' });
  await model.load_adapter(HUB_ADAPTER, { adapter_name: 'hub' });
  model.set_adapter('local');
  const local = await logits();
  model.set_adapter('hub'); // a swap: the ONNX Runtime session stays
  const fromHub = await logits();
  const perCall = await logits({ adapter: 'local' }); // one call on 'local'; 'hub' stays active
  const afterPerCall = await logits();
  model.disable_adapters(); // the exact base model
  const disabled = await logits();

  let missing: { name: string; message: string } | undefined;
  try {
    await model.load_adapter('./adapters/does-not-exist', { adapter_name: 'missing' });
  } catch (e) {
    missing = { name: (e as Error).name, message: (e as Error).message };
  }
  return { base, local, hub: fromHub, perCall, afterPerCall, disabled, adapters: model.list_adapters().map((a) => a.name), missing, errors: errorClassNames() };
}

run().then(
  (result) => {
    outEl.textContent = JSON.stringify(result, null, 1);
    statusEl.textContent = 'done';
    Object.assign(window, { __result: result });
  },
  (e: unknown) => {
    const error = { name: (e as Error).name, message: (e as Error).message };
    outEl.textContent = `${error.name}: ${error.message}`;
    statusEl.textContent = 'error';
    Object.assign(window, { __result: { error } });
  },
);
