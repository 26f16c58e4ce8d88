/** Conversion of LoRA adapters into tensor-method adapters (fits with measured error). */
export {
  CONVERT_TARGETS,
  conversionShape,
  conversionTarget,
  convertLora,
  type ConvertCandidate,
  type ConvertOptions,
  type ConvertProgress,
  type ConvertResult,
  type ConvertTarget,
} from './convert.js';
export { svdTruncation, targetSpectra, type SvdBaseline } from './svd-baseline.js';
export {
  factoredNorm2,
  loraTarget,
  moduleError,
  moduleSingularValues,
  moduleSvd,
  type FitUpdate,
  type Target as FitTarget,
  type TargetModule as FitTargetModule,
} from './target.js';
export { jointTtSvd, ttBackward, ttForward, ttSvd } from './tt.js';
