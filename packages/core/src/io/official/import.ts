/**
 * Official checkpoints → Adapter. Picks the method's importer (by `from`, or the one whose
 * `detect` accepts the files), then validates its parts exactly as a native adapter file is
 * validated: the method's schema (with `--config` overrides), the plan on the shape, the tensors
 * against the plan. Generic: no method names here; importers come from the method registry.
 */
import { ConfigError } from '../../errors.js';
import { checkParams, parseMethodConfig } from '../../methods/generic.js';
import { listMethods } from '../../methods/registry.js';
import type { AdapterMethod } from '../../methods/types.js';
import type { Adapter } from '../adapter.js';
import type { ImportedParts, OfficialFiles, OfficialImportOptions, OfficialImporter } from './types.js';

function importers(): { method: AdapterMethod<any>; importer: OfficialImporter }[] {
  return listMethods()
    .filter((m) => m.importOfficial !== undefined)
    .map((m) => ({ method: m, importer: m.importOfficial! }));
}

/** `--from` names of the methods that can import official checkpoints. */
export function officialSources(): string[] {
  return importers().map((x) => x.importer.from);
}

/** The importer whose `detect` accepts these files, if exactly one does. */
export function detectOfficial(f: OfficialFiles): string | undefined {
  const hits = importers().filter((x) => {
    try {
      return x.importer.detect(f);
    } catch {
      return false;
    }
  });
  return hits.length === 1 ? hits[0]!.importer.from : undefined;
}

export interface ImportedAdapter {
  adapter: Adapter;
  from: string;
  notes: string[];
}

/** Import an official checkpoint as a native Adapter. */
export function importOfficial(f: OfficialFiles, opts: OfficialImportOptions & { from?: string } = {}): ImportedAdapter {
  const all = importers();
  let pick: (typeof all)[number] | undefined;
  if (opts.from !== undefined) {
    pick = all.find((x) => x.importer.from === opts.from!.toLowerCase());
    if (!pick) throw new ConfigError('unknown official source', { field: 'from', expected: all.map((x) => x.importer.from), found: opts.from });
  } else {
    const from = detectOfficial(f);
    if (from === undefined) {
      throw new ConfigError('cannot tell which official code wrote these files', {
        file: f.source,
        field: 'from',
        expected: `one of ${all.map((x) => x.importer.from).join(', ')} (pass --from)`,
        found: [...f.files.keys()],
      });
    }
    pick = all.find((x) => x.importer.from === from)!;
  }
  const parts: ImportedParts = pick.importer.importFiles(f, opts);
  const raw = { ...parts.config, ...(opts.config ?? {}), peft_type: pick.method.peftType };
  const config = parseMethodConfig(pick.method, raw, f.source);
  const plan = pick.method.plan(config, parts.shape);
  checkParams(plan, parts.params, f.source);
  const adapter: Adapter = {
    method: pick.method,
    config,
    plan,
    params: parts.params,
    extras: parts.extras,
    shape: parts.shape,
    dtype: 'fp32',
    ...(f.source !== undefined ? { source: f.source } : {}),
  };
  return { adapter, from: pick.importer.from, notes: parts.notes };
}
