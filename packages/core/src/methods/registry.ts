/** Registry of adapter methods keyed by `peft_type` (and by CLI name). */
import { ConfigError } from '../errors.js';
import type { AdapterMethod, BaseAdapterConfig } from './types.js';

const byType = new Map<string, AdapterMethod<any>>();

export function registerMethod<C extends BaseAdapterConfig>(method: AdapterMethod<C>): void {
  byType.set(method.peftType, method as AdapterMethod<any>);
}

/** All registered methods, in registration order. */
export function listMethods(): AdapterMethod<any>[] {
  return [...byType.values()];
}

/** Look a method up by `peft_type` (`TRAC`) or CLI name (`trac`), case-insensitively. */
export function getMethod(name: string): AdapterMethod<any> {
  const upper = String(name).toUpperCase();
  const m = byType.get(upper) ?? [...byType.values()].find((x) => x.cliName === String(name).toLowerCase());
  if (!m) {
    throw new ConfigError('unknown peft_type', {
      field: 'peft_type',
      expected: [...byType.keys()].join(' | '),
      found: name,
    });
  }
  return m;
}
