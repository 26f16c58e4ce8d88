/**
 * Tokenizer files for the generated models: the real DistilBERT WordPiece and GPT-2 BPE tokenizers
 * from the shared PEFT fixtures where they fit (base sizes), otherwise small tokenizers generated
 * here deterministically: a WordPiece vocabulary (BERT, DistilBERT), a byte-level BPE (GPT-2,
 * RoBERTa) and a SentencePiece-style BPE with byte fallback (LLaMA), each trained on a fixed corpus.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Arch, Size } from './spec.js';

type Json = Record<string, unknown>;

export interface TokenizerFiles {
  tokenizer: Json;
  config: Json;
  /** Number of token ids the tokenizer can produce (embedding rows needed). */
  vocabSize: number;
  /** Where the vocabulary came from. */
  source: 'distilbert-fixture' | 'gpt2-fixture' | 'gpt2-fixture-roberta' | 'generated';
  bosTokenId?: number;
  eosTokenId?: number;
  padTokenId?: number;
}

/** Default location of the real tokenizers: `<repo>/fixtures/peft-real`. */
export function defaultFixturesDir(): string {
  return fileURLToPath(new URL('../../../fixtures/peft-real/', import.meta.url));
}

/** A small fixed English corpus the generated vocabularies are trained on. */
const CORPUS = `The quick brown fox jumps over the lazy dog.
Hello world! This is a tiny model with random weights, made for tests.
Adapters are small: many of them fit in memory and switch in milliseconds.
I love this movie, it was great. I hate waiting in the rain.
She said that the weather is nice today, and we went for a walk in the park.
Transformers run in the browser with ONNX Runtime and WebAssembly.
What time is it? It is ten past seven in the evening.
Numbers like 1, 2, 3, 42 and 2024 appear in text too.
The model reads the input and writes the output one token at a time.
Sadness, joy, love, anger, fear and surprise are six emotions.`;

const BERT_PUNCT = `!"#$%&'()*+,-./:;<=>?@[\\]^_\`{|}~`;

function addedToken(id: number, content: string, extra: Partial<Json> = {}): Json {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true, ...extra };
}

// ---- WordPiece (BERT, DistilBERT) -------------------------------------------------------------

function wordPieceTokenizerJson(vocab: Record<string, number>, special: { pad: number; unk: number; cls: number; sep: number; mask: number }): Json {
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [
      addedToken(special.pad, '[PAD]'),
      addedToken(special.unk, '[UNK]'),
      addedToken(special.cls, '[CLS]'),
      addedToken(special.sep, '[SEP]'),
      addedToken(special.mask, '[MASK]'),
    ],
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '[CLS]', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '[SEP]', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 1 } },
        { SpecialToken: { id: '[SEP]', type_id: 1 } },
      ],
      special_tokens: {
        '[CLS]': { id: '[CLS]', ids: [special.cls], tokens: ['[CLS]'] },
        '[SEP]': { id: '[SEP]', ids: [special.sep], tokens: ['[SEP]'] },
      },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab },
  };
}

function smallWordPieceVocab(): Record<string, number> {
  const tokens = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];
  const chars = [...'abcdefghijklmnopqrstuvwxyz0123456789', ...BERT_PUNCT];
  tokens.push(...chars);
  tokens.push(...[...'abcdefghijklmnopqrstuvwxyz0123456789'].map((c) => `##${c}`));
  tokens.push('##s', '##ed', '##ing', '##er', '##ly', '##es', '##est');
  const counts = new Map<string, number>();
  for (const w of CORPUS.toLowerCase().match(/[a-z0-9]+/g) ?? []) counts.set(w, (counts.get(w) ?? 0) + 1);
  const words = [...counts].filter(([w]) => w.length > 1).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  for (const [w] of words) tokens.push(w);
  return Object.fromEntries([...new Set(tokens)].map((t, i) => [t, i]));
}

function bertConfig(cls: string): Json {
  return {
    clean_up_tokenization_spaces: true,
    cls_token: '[CLS]',
    do_lower_case: true,
    mask_token: '[MASK]',
    model_max_length: 512,
    pad_token: '[PAD]',
    sep_token: '[SEP]',
    strip_accents: null,
    tokenize_chinese_chars: true,
    tokenizer_class: cls,
    unk_token: '[UNK]',
  };
}

// ---- byte-level BPE (GPT-2, RoBERTa) ----------------------------------------------------------

/** GPT-2's bytes_to_unicode: printable bytes map to themselves, the rest to U+0100 onwards. */
export function bytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let i = 33; i <= 126; i++) bs.push(i);
  for (let i = 161; i <= 172; i++) bs.push(i);
  for (let i = 174; i <= 255; i++) bs.push(i);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n);
      n++;
    }
  }
  const out = new Array<string>(256);
  bs.forEach((b, i) => (out[b] = String.fromCodePoint(cs[i]!)));
  return out;
}

/** Byte-level symbols in GPT-2's id order (the first 256 ids of its vocabulary). */
function byteSymbols(): string[] {
  const m = bytesToUnicode();
  const order: number[] = [];
  for (let i = 33; i <= 126; i++) order.push(i);
  for (let i = 161; i <= 172; i++) order.push(i);
  for (let i = 174; i <= 255; i++) order.push(i);
  for (let b = 0; b < 256; b++) if (!order.includes(b)) order.push(b);
  return order.map((b) => m[b]!);
}

/** Learn `n` BPE merges on `words` (symbol sequences with counts); ties break lexicographically. */
function trainBpe(words: Map<string, number>, split: (w: string) => string[], n: number): Array<[string, string]> {
  const seqs = [...words].map(([w, c]) => ({ s: split(w), c }));
  const merges: Array<[string, string]> = [];
  for (let m = 0; m < n; m++) {
    const pairs = new Map<string, number>();
    for (const { s, c } of seqs) for (let i = 0; i + 1 < s.length; i++) {
      const k = `${s[i]} ${s[i + 1]}`;
      pairs.set(k, (pairs.get(k) ?? 0) + c);
    }
    let best = '';
    let bestC = 1; // merge only pairs seen at least twice
    for (const [k, c] of [...pairs].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) if (c > bestC) [best, bestC] = [k, c];
    if (!best) break;
    const [a, b] = best.split(' ') as [string, string];
    merges.push([a, b]);
    for (const q of seqs) {
      const out: string[] = [];
      for (let i = 0; i < q.s.length; i++) {
        if (i + 1 < q.s.length && q.s[i] === a && q.s[i + 1] === b) {
          out.push(a + b);
          i++;
        } else out.push(q.s[i]!);
      }
      q.s = out;
    }
  }
  return merges;
}

function byteLevelWords(): Map<string, number> {
  const map = bytesToUnicode();
  const enc = new TextEncoder();
  const words = new Map<string, number>();
  const re = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;
  for (const w of CORPUS.match(re) ?? []) {
    const s = [...enc.encode(w)].map((x) => map[x]!).join('');
    words.set(s, (words.get(s) ?? 0) + 1);
  }
  return words;
}

function byteLevelBpe(nMerges: number): { vocab: string[]; merges: Array<[string, string]> } {
  const merges = trainBpe(byteLevelWords(), (w) => [...w], nMerges);
  return { vocab: [...byteSymbols(), ...merges.map(([a, b]) => a + b)], merges };
}

function bpeModel(vocab: Record<string, number>, merges: Array<[string, string]>, extra: Json = {}): Json {
  return {
    type: 'BPE',
    dropout: null,
    unk_token: null,
    continuing_subword_prefix: '',
    end_of_word_suffix: '',
    fuse_unk: false,
    byte_fallback: false,
    ignore_merges: false,
    vocab,
    merges,
    ...extra,
  };
}

const BYTE_LEVEL = { add_prefix_space: false, trim_offsets: true, use_regex: true };

function gpt2Tokenizer(tokens: string[], merges: Array<[string, string]>): TokenizerFiles {
  const vocab: Record<string, number> = Object.fromEntries(tokens.map((t, i) => [t, i]));
  const eos = tokens.length;
  vocab['<|endoftext|>'] = eos;
  return {
    tokenizer: {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: [addedToken(eos, '<|endoftext|>', { normalized: true })],
      normalizer: null,
      pre_tokenizer: { type: 'ByteLevel', ...BYTE_LEVEL },
      post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
      decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
      model: bpeModel(vocab, merges),
    },
    config: gpt2Config(),
    vocabSize: eos + 1,
    source: 'generated',
    bosTokenId: eos,
    eosTokenId: eos,
  };
}

function gpt2Config(): Json {
  return {
    add_prefix_space: false,
    bos_token: '<|endoftext|>',
    clean_up_tokenization_spaces: false,
    eos_token: '<|endoftext|>',
    model_max_length: 1024,
    tokenizer_class: 'GPT2Tokenizer',
    unk_token: '<|endoftext|>',
  };
}

function robertaTokenizer(tokens: string[], merges: Array<[string, string]>): TokenizerFiles {
  const specials = ['<s>', '<pad>', '</s>', '<unk>'];
  const all = [...specials, ...tokens.filter((t) => t !== '<|endoftext|>')];
  const vocab: Record<string, number> = Object.fromEntries(all.map((t, i) => [t, i]));
  const mask = all.length;
  vocab['<mask>'] = mask;
  return {
    tokenizer: {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: [
        addedToken(0, '<s>', { normalized: true }),
        addedToken(1, '<pad>', { normalized: true }),
        addedToken(2, '</s>', { normalized: true }),
        addedToken(3, '<unk>', { normalized: true }),
        addedToken(mask, '<mask>', { lstrip: true }),
      ],
      normalizer: null,
      pre_tokenizer: { type: 'ByteLevel', ...BYTE_LEVEL },
      post_processor: { type: 'RobertaProcessing', sep: ['</s>', 2], cls: ['<s>', 0], trim_offsets: true, add_prefix_space: false },
      decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
      model: bpeModel(vocab, merges),
    },
    config: {
      add_prefix_space: false,
      bos_token: '<s>',
      clean_up_tokenization_spaces: true,
      cls_token: '<s>',
      eos_token: '</s>',
      errors: 'replace',
      mask_token: '<mask>',
      model_max_length: 512,
      pad_token: '<pad>',
      sep_token: '</s>',
      tokenizer_class: 'RobertaTokenizer',
      trim_offsets: true,
      unk_token: '<unk>',
    },
    vocabSize: mask + 1,
    source: 'generated',
    bosTokenId: 0,
    eosTokenId: 2,
    padTokenId: 1,
  };
}

// ---- SentencePiece-style BPE with byte fallback (LLaMA) ---------------------------------------

function llamaTokenizer(nMerges: number): TokenizerFiles {
  const words = new Map<string, number>();
  for (const w of CORPUS.split(/\s+/).filter(Boolean)) words.set(`▁${w}`, (words.get(`▁${w}`) ?? 0) + 1);
  const merges = trainBpe(words, (w) => [...w], nMerges);
  const chars = [...new Set([...words.keys()].flatMap((w) => [...w]))].sort();
  const tokens = ['<unk>', '<s>', '</s>'];
  for (let b = 0; b < 256; b++) tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
  tokens.push(...chars, ...merges.map(([a, b]) => a + b));
  const uniq = [...new Set(tokens)];
  const vocab: Record<string, number> = Object.fromEntries(uniq.map((t, i) => [t, i]));
  return {
    tokenizer: {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: [addedToken(0, '<unk>'), addedToken(1, '<s>'), addedToken(2, '</s>')],
      normalizer: {
        type: 'Sequence',
        normalizers: [
          { type: 'Prepend', prepend: '▁' },
          { type: 'Replace', pattern: { String: ' ' }, content: '▁' },
        ],
      },
      pre_tokenizer: null,
      post_processor: {
        type: 'TemplateProcessing',
        single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
        pair: [
          { SpecialToken: { id: '<s>', type_id: 0 } },
          { Sequence: { id: 'A', type_id: 0 } },
          { SpecialToken: { id: '<s>', type_id: 1 } },
          { Sequence: { id: 'B', type_id: 1 } },
        ],
        special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
      },
      decoder: {
        type: 'Sequence',
        decoders: [
          { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
          { type: 'ByteFallback' },
          { type: 'Fuse' },
          { type: 'Strip', content: ' ', start: 1, stop: 0 },
        ],
      },
      model: bpeModel(vocab, merges, { unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: true, byte_fallback: true }),
    },
    config: {
      add_bos_token: true,
      add_eos_token: false,
      bos_token: '<s>',
      clean_up_tokenization_spaces: false,
      eos_token: '</s>',
      legacy: false,
      model_max_length: 2048,
      pad_token: null,
      padding_side: 'left',
      tokenizer_class: 'LlamaTokenizer',
      unk_token: '<unk>',
    },
    vocabSize: uniq.length,
    source: 'generated',
    bosTokenId: 1,
    eosTokenId: 2,
  };
}

// ---- selection --------------------------------------------------------------------------------

function readJson(file: string): Json {
  return JSON.parse(readFileSync(file, 'utf8')) as Json;
}

/**
 * Tokenizer for `arch` at `size` (none for ViT). Base sizes use the real tokenizers when
 * `fixturesDir` holds them and fall back to the generated ones otherwise.
 */
export function makeTokenizer(arch: Arch, size: Size, fixturesDir: string = defaultFixturesDir()): TokenizerFiles | undefined {
  const distil = path.join(fixturesDir, 'distilbert-lora-emotion', 'tokenizer.json');
  const gpt2 = path.join(fixturesDir, 'gpt2-lora-tigrinya', 'tokenizer.json');
  switch (arch) {
    case 'vit':
      return undefined;
    case 'bert':
    case 'distilbert': {
      const config = bertConfig(arch === 'bert' ? 'BertTokenizer' : 'DistilBertTokenizer');
      if (size === 'base' && existsSync(distil)) {
        const tokenizer = readJson(distil);
        const vocab = (tokenizer['model'] as { vocab: Record<string, number> }).vocab;
        return { tokenizer, config, vocabSize: Object.keys(vocab).length, source: 'distilbert-fixture', padTokenId: 0 };
      }
      const vocab = smallWordPieceVocab();
      return {
        tokenizer: wordPieceTokenizerJson(vocab, { pad: 0, unk: 1, cls: 2, sep: 3, mask: 4 }),
        config,
        vocabSize: Object.keys(vocab).length,
        source: 'generated',
        padTokenId: 0,
      };
    }
    case 'gpt2': {
      if (size === 'base' && existsSync(gpt2)) {
        const tokenizer = readJson(gpt2);
        // The fixture was saved with a training-time truncation (128); the published GPT-2 has none.
        tokenizer['truncation'] = null;
        return { tokenizer, config: gpt2Config(), vocabSize: 50257, source: 'gpt2-fixture', bosTokenId: 50256, eosTokenId: 50256 };
      }
      const { vocab, merges } = byteLevelBpe(200);
      return gpt2Tokenizer(vocab, merges);
    }
    case 'roberta': {
      if (size === 'base' && existsSync(gpt2)) {
        // RoBERTa's tokenizer is GPT-2's byte-level BPE with fairseq's special tokens in front.
        const model = readJson(gpt2)['model'] as { vocab: Record<string, number>; merges: Array<[string, string] | string> };
        const tokens = Object.entries(model.vocab).sort((a, b) => a[1] - b[1]).map(([t]) => t);
        const merges = model.merges.map((m) => (typeof m === 'string' ? (m.split(' ') as [string, string]) : m));
        return { ...robertaTokenizer(tokens, merges), source: 'gpt2-fixture-roberta' };
      }
      const { vocab, merges } = byteLevelBpe(200);
      return robertaTokenizer(vocab, merges);
    }
    case 'llama':
      return llamaTokenizer(200);
  }
}
