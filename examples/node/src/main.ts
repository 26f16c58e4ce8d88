// A Node app with one transformers.js model and two TensorPEFT adapters, swapped at run time.
//   npm run build && npm start -- [model id] [adapter folder]...
// The model id is looked up under ./models/ (transformers.js' env.localModelPath), then on the Hub.
import { AutoModelForSequenceClassification, AutoTokenizer, env, pipeline } from '@huggingface/transformers';
import '@tensorpeft/kernels-wasm/register'; // SIMD WebAssembly kernels for materializing adapters
import { attachAdapters, enableAdapters, from_pretrained } from '@tensorpeft/transformers-plugin';

const [modelId = 'tiny-distilbert', first = './adapters/lora', second = './adapters/tenslora'] = process.argv.slice(2);
env.localModelPath = './models/';

const model = await from_pretrained(env, AutoModelForSequenceClassification, modelId, { dtype: 'fp32' });
const tokenizer = await AutoTokenizer.from_pretrained(modelId);
const inputs = tokenizer(['i feel happy today', 'this is the worst day'], { padding: true });
const logits = async (opts?: { adapter: string | null }): Promise<number[]> => Array.from((await model(inputs, opts)).logits.data as Float32Array);

const base = await logits();
// PEFT's order: the source first (a folder, a URL, a Hub id `user/repo`, or bytes), then the name.
await model.load_adapter(first, { adapter_name: 'first' });
await model.load_adapter(second, { adapter_name: 'second' });

model.set_adapter('first');
const withFirst = await logits();
model.set_adapter('second'); // a swap: no new ONNX Runtime session
const withSecond = await logits();
const perCall = await logits({ adapter: 'first' }); // one call on another adapter; 'second' stays active
model.disable_adapters(); // the exact base model
const disabled = await logits();

// Pipelines too: load them after enableAdapters(env), then attach; `adapter` is a per-call option.
const restore = enableAdapters(env);
const classify = attachAdapters(await pipeline('text-classification', modelId, { dtype: 'fp32' }));
restore();
await classify.load_adapter(first, { adapter_name: 'first' });
const pipeFirst = await classify('i feel happy today', { top_k: null, adapter: 'first' });
const pipeBase = await classify('i feel happy today', { top_k: null, adapter: null });

console.log(JSON.stringify({ base, first: withFirst, second: withSecond, perCall, disabled, adapters: model.list_adapters().map((a) => a.name), pipeFirst, pipeBase }));
