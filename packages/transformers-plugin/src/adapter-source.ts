/**
 * Reading an adapter's files for `load_adapter`, through core's browser-safe loader: Hub ids are
 * resolved with transformers.js' own `env` (`remoteHost`, `remotePathTemplate`, `allowRemoteModels`)
 * and the given `revision`, relative URLs against the page, Files / bytes as given, folders in Node.
 */
import { readAdapterFiles, type AdapterFromBytesInput, type AdapterLocation, type ReadAdapterOptions } from '@tensorpeft/core';
import { env } from '@huggingface/transformers';
import type { AdapterSource, LoadAdapterOptions } from './types.js';

/** The Hub settings transformers.js resolves model ids with (false: remote models are off). */
function hubFromEnv(): ReadAdapterOptions['hub'] {
  const e = env as { allowRemoteModels?: boolean; remoteHost?: string; remotePathTemplate?: string };
  if (e.allowRemoteModels === false) return false;
  return { ...(e.remoteHost ? { remoteHost: e.remoteHost } : {}), ...(e.remotePathTemplate ? { remotePathTemplate: e.remotePathTemplate } : {}) };
}

/** The two files of `source` (anything but an `Adapter` object), with progress events under `name`. */
export async function readAdapter(source: Exclude<AdapterSource, { plan: unknown }>, name: string, opts: LoadAdapterOptions): Promise<AdapterFromBytesInput> {
  const cb = opts.progress_callback;
  const files = await readAdapterFiles(source as AdapterLocation, {
    hub: hubFromEnv(),
    ...(opts.revision !== undefined ? { revision: opts.revision } : {}),
    ...(opts.max_file_bytes !== undefined ? { maxBytes: opts.max_file_bytes } : {}),
    ...(opts.connect_timeout_ms !== undefined ? { connectTimeoutMs: opts.connect_timeout_ms } : {}),
    ...(opts.idle_timeout_ms !== undefined ? { idleTimeoutMs: opts.idle_timeout_ms } : {}),
    ...(opts.timeout_ms !== undefined ? { timeoutMs: opts.timeout_ms } : {}),
    ...(opts.redirect !== undefined ? { redirect: opts.redirect } : {}),
    ...(opts.allowed_origins !== undefined ? { allowedOrigins: opts.allowed_origins } : {}),
    ...(opts.signal !== undefined ? { signal: opts.signal } : {}),
    ...(cb
      ? {
          onProgress: (e) =>
            cb(
              e.status === 'progress'
                ? { status: 'progress', name, file: e.file, loaded: e.loaded ?? 0, total: e.total ?? 0, progress: e.total ? ((e.loaded ?? 0) / e.total) * 100 : 100 }
                : { status: e.status, name, file: e.file },
            ),
        }
      : {}),
  });
  return { config: files.config, safetensors: files.safetensors, source: files.source };
}
