export { createTrainer, Trainer, type CreateTrainerOptions, type EvalResult, type TrainableModel, type TrainOptions, type TrainProgress, type TrainResult, type TrainTask } from './trainer.js';
export { buildTrainingGraph, type TrainingGraph, type TrainingGraphOptions, type TrainLoss } from './graph.js';
export { appendCrossEntropy, appendLogitsMse, LABELS_INPUT, TARGETS_INPUT, WEIGHTS_INPUT, LOSS_OUTPUT } from './loss.js';
export { modelFeeds, modelInputs, type Batch, type ModelInput } from './feeds.js';
export { encodeExamples, padBatch, shuffled, type Example, type Encoded, type PaddedBatch } from './data.js';
export { AdamW, linearSchedule, clipGlobalNorm, type AdamWOptions } from './optim.js';
export { parseCsv, parseDataFile, parseJsonl } from './files.js';
export { lossCurveSvg, type CurveData } from './plot.js';
