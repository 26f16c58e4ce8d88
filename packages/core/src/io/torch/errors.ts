/** Errors of the PyTorch checkpoint reader. */
import { AdapterFormatError } from '../../errors.js';

/**
 * A pickle asked for a Python global outside the allowlist (e.g. `os.system`, `builtins.eval`):
 * the file could run code if loaded with `torch.load(weights_only=False)`. Nothing was executed;
 * `details.found` names the global. An AdapterFormatError, so callers that handle bad files
 * handle this too.
 */
export class UnsafePickleError extends AdapterFormatError {
  override name = 'UnsafePickleError';
  override readonly code: string = 'UNSAFE_PICKLE';
}
