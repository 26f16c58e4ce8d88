/**
 * Native adapter → the files a method's official code reads (`tensorpeft export --to official`),
 * so an adapter made or converted here can continue training in Python. Generic: the method's
 * importer supplies `exportFiles`; methods without an official format are a ConfigError.
 */
import { ConfigError } from '../../errors.js';
import type { Adapter } from '../adapter.js';

export function exportOfficial(a: Adapter): { files: Map<string, Uint8Array>; from: string; notes: string[] } {
  const imp = a.method.importOfficial;
  if (!imp?.exportFiles) {
    throw new ConfigError('this method has no official format to export to', { field: 'peft_type', expected: 'TRAC or LORTA', found: a.config.peft_type });
  }
  const { files, notes } = imp.exportFiles({ config: a.config as Record<string, unknown>, plan: a.plan, params: a.params, extras: a.extras, shape: a.shape });
  return { files, from: imp.from, notes };
}
