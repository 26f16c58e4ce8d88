/** fp16 adapter inputs fed from float32 tensors: `castFeedsToInputTypes` (dtype.ts) with transformers.js' ORT tensors. */
import { Tensor } from '@huggingface/transformers';
import { castFeedsToInputTypes } from './dtype.js';
import { INPUT_PREFIX } from './rewrite.js';

type Run = Parameters<typeof castFeedsToInputTypes>[1];

/** `run` converting float32 feeds of the session's float16 `tensorpeft.*` inputs (unchanged when it has none). */
export function withHalfFeeds(session: Parameters<typeof castFeedsToInputTypes>[0], run: Run): Run {
  return castFeedsToInputTypes(session, run, INPUT_PREFIX, (bits, dims) => (new Tensor('float16', bits, [...dims]) as unknown as { ort_tensor: unknown }).ort_tensor);
}
