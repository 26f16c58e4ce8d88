/** Reading PyTorch checkpoints (`torch.save` zip files) safely: no code runs, only allowlisted globals. */
export { UnsafePickleError } from './errors.js';
export { unpickle, type UnpickleOptions } from './pickle.js';
export { RECORD_CLASSES, isAllowedGlobal } from './allowlist.js';
export {
  MAX_TORCH_TENSOR_ELEMENTS,
  decodeTorchTensor,
  isTorchCheckpoint,
  readTorchCheckpoint,
  readTorchStateDict,
  type DecodeOptions,
  type ReadTorchOptions,
  type TorchCheckpoint,
} from './checkpoint.js';
export { PyDict, PyGlobal, PyObject, PySet, PyTuple, TorchStorage, TorchTensor, type PyValue, type TorchDtype } from './values.js';
export { PickleWriter, tensorW, torchSaveZip, writeTorchStateDict, type W as PickleValue } from './writer.js';
