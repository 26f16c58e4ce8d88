/**
 * A Whisper tokenizer for the generated Whisper folders: GPT-2's byte-level BPE (the generated tiny
 * one, or the real GPT-2 vocabulary from the fixtures at base size) with Whisper's special tokens
 * after `<|endoftext|>` — `<|startoftranscript|>`, `<|translate|>`, `<|transcribe|>`, `<|startoflm|>`,
 * `<|startofprev|>`, `<|nocaptions|>`, `<|notimestamps|>`, as in the English-only checkpoints' files
 * (tokenizer_class `WhisperTokenizer`, which the ASR pipeline's `_decode_asr` uses; token ids from
 * `<|notimestamps|>` + 1 on are timestamps there, so the tiny vocabulary ends at `<|notimestamps|>`).
 */
import type { TokenizerFiles } from './tokenizers.js';

type Json = Record<string, unknown>;

export const WHISPER_SPECIALS = ['<|startoftranscript|>', '<|translate|>', '<|transcribe|>', '<|startoflm|>', '<|startofprev|>', '<|nocaptions|>', '<|notimestamps|>'] as const;

export interface WhisperTokenizerFiles {
  tokenizer: Json;
  config: Json;
  /** Ids of `<|endoftext|>`, `<|startoftranscript|>`, `<|notimestamps|>`. */
  endOfText: number;
  startOfTranscript: number;
  noTimestamps: number;
  source: TokenizerFiles['source'];
}

/**
 * `gpt2` (GPT-2 tokenizer files, `<|endoftext|>` = its eos) with Whisper's specials at `ids` (default:
 * right after `<|endoftext|>`, in WHISPER_SPECIALS' order).
 */
export function whisperTokenizer(gpt2: TokenizerFiles, ids?: readonly number[]): WhisperTokenizerFiles {
  const eos = gpt2.eosTokenId!;
  const at = ids ?? WHISPER_SPECIALS.map((_, i) => eos + 1 + i);
  const tok = structuredClone(gpt2.tokenizer) as Json & { added_tokens: Json[]; model: Json & { vocab: Record<string, number> } };
  for (const [i, content] of WHISPER_SPECIALS.entries()) {
    tok.added_tokens.push({ id: at[i]!, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
    tok.model.vocab[content] = at[i]!;
  }
  // Whisper's files have no post-processor adding tokens: the decoder prompt is built by the model.
  tok['post_processor'] = null;
  return {
    tokenizer: tok,
    config: {
      add_prefix_space: false,
      bos_token: '<|endoftext|>',
      clean_up_tokenization_spaces: true,
      eos_token: '<|endoftext|>',
      errors: 'replace',
      model_max_length: 1024,
      pad_token: '<|endoftext|>',
      processor_class: 'WhisperProcessor',
      return_attention_mask: false,
      tokenizer_class: 'WhisperTokenizer',
      unk_token: '<|endoftext|>',
    },
    endOfText: eos,
    startOfTranscript: at[0]!,
    noTimestamps: at[WHISPER_SPECIALS.length - 1]!,
    source: gpt2.source,
  };
}
