/**
 * How `verify` reads the model folder and loads the models of its check, shared by the text/image
 * check (verify.ts) and the encoder–decoder one (verify-encoder-decoder.ts): transformers.js pointed
 * at the local folder and put back afterwards, the merged reference served from bytes through its
 * custom cache, a model loaded, run once and disposed, and the plugged model loaded with the rewrite
 * hooks on for its own load only.
 */
import { access } from 'node:fs/promises';
import path from 'node:path';
import type { CacheEnv, EnableOptions } from './cache.js';
import { attachAdapters, enableAdapters } from './plugin.js';
import type { WithAdapters } from './types.js';

/** Whether `file` can be reached (any error counts as absent). */
export function fileExists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}

/**
 * transformers.js reads the model folder `dir` by id (local only, no remote models). `restore` puts
 * back every env field the check changes, the custom cache of `serveFromBytes` included.
 */
export function useLocalFolder(env: CacheEnv & { localModelPath: string }, dir: string): { id: string; restore: () => void } {
  const saved = { allowRemoteModels: env.allowRemoteModels, localModelPath: env.localModelPath, useCustomCache: env.useCustomCache, customCache: env.customCache };
  env.allowRemoteModels = false;
  env.localModelPath = `${path.dirname(dir)}/`;
  return { id: path.basename(dir), restore: () => void Object.assign(env, saved) };
}

/**
 * Every file transformers.js looks up in its cache is answered by `answer(path)` (the key without
 * its query string): the merged reference's bytes, or undefined for files it reads as usual.
 */
export function serveFromBytes(env: CacheEnv, answer: (p: string) => Uint8Array | undefined): void {
  env.useCustomCache = true;
  env.customCache = {
    match: async (key: string) => {
      const data = answer(key.split('?')[0]!);
      return data ? new Response(data as Uint8Array<ArrayBuffer>) : undefined;
    },
    put: async () => undefined,
  };
}

/** Loads a model, runs it once and disposes it. */
export async function runOnce<M extends { dispose(): Promise<unknown> }, O>(load: () => Promise<M>, run: (m: M) => Promise<O>): Promise<O> {
  const m = await load();
  const out = await run(m);
  await m.dispose();
  return out;
}

/** A model loaded with the plugin's rewrite hooks enabled (`opts`) for this load only, adapters attached. */
export async function loadPlugged<M extends object>(env: CacheEnv, opts: EnableOptions, load: () => Promise<M>): Promise<WithAdapters<M>> {
  const restore = enableAdapters(env, opts);
  try {
    return attachAdapters(await load());
  } finally {
    restore();
  }
}
