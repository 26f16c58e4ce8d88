/** The transformers.js dtypes beyond fp32 and q8, by the file suffix transformers.js loads (`model_<dtype>.onnx`). */
import type { Graph } from './graph.js';
import { convertToFloat16 } from './float16.js';
import { quantizeBnb4Graph, quantizeQ4Graph } from './quant4.js';
import { INT8_OPTIONS, quantizeDynamic, UINT8_OPTIONS } from './quantize.js';

export const EXTRA_DTYPES = ['fp16', 'int8', 'uint8', 'q4', 'q4f16', 'bnb4'] as const;
export type ExtraDtype = (typeof EXTRA_DTYPES)[number];

/** The graph of `onnx/model_<dtype>.onnx` made from the fp32 graph (which is not modified), in the order transformers.js' script applies the steps. */
export function dtypeGraph(g: Graph, dtype: ExtraDtype): Graph {
  switch (dtype) {
    case 'fp16':
      return convertToFloat16(g);
    case 'int8':
      return quantizeDynamic(g, INT8_OPTIONS);
    case 'uint8':
      return quantizeDynamic(g, UINT8_OPTIONS);
    case 'q4':
      return quantizeQ4Graph(g);
    case 'q4f16':
      return convertToFloat16(quantizeQ4Graph(g));
    case 'bnb4':
      return quantizeBnb4Graph(g);
  }
}
