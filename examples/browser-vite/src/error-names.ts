// Every typed error the TensorPEFT packages export, constructed after the production build: its
// `name` must still be its exported class name (minifiers rename classes; apps show and compare
// `e.name`). The CI test reads the result; an app does not need this file.
import * as core from '@tensorpeft/core';
import * as wasm from '@tensorpeft/kernels-wasm';
import * as wgsl from '@tensorpeft/kernels-wgsl';
import * as plugin from '@tensorpeft/transformers-plugin';

export interface ErrorNameReport {
  /** `package.Export` of every TensorPeftError class found. */
  checked: string[];
  /** Those whose instances are named otherwise. */
  wrong: { error: string; name: string }[];
}

export function errorClassNames(): ErrorNameReport {
  const report: ErrorNameReport = { checked: [], wrong: [] };
  const modules: Record<string, Record<string, unknown>> = { core, 'kernels-wasm': wasm, 'kernels-wgsl': wgsl, 'transformers-plugin': plugin };
  for (const [pkg, mod] of Object.entries(modules)) {
    for (const [key, value] of Object.entries(mod)) {
      if (typeof value !== 'function' || !(value === core.TensorPeftError || value.prototype instanceof core.TensorPeftError)) continue;
      const id = `${pkg}.${key}`;
      report.checked.push(id);
      let name: string;
      try {
        name = (new (value as new (message: string) => Error)('probe')).name;
      } catch (e) {
        name = `(constructor threw ${(e as Error).name})`;
      }
      if (name !== key) report.wrong.push({ error: id, name });
    }
  }
  return report;
}
