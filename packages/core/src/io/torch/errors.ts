/** Errors of the PyTorch checkpoint reader. */
import { TensorPeftError } from '../../errors.js';

/**
 * A pickle asked for a Python global outside the allowlist (e.g. `os.system`, `builtins.eval`):
 * the file could run code if loaded with `torch.load(weights_only=False)`. Nothing was executed;
 * `details.found` names the global.
 */
export class UnsafePickleError extends TensorPeftError {}
