/**
 * The feeds object of one session run: the caller's inputs plus an adapter's feeds (issue 16).
 *
 * Built fresh per run this cost more than a tiny LLaMA's whole token step: V8's object spread of the
 * ~30-60 `tensorpeft.*` keys took ~0.3-0.5 ms per run on this machine (a per-key loop ~10 µs).
 * So each adapter feeds object (one per entry and session; a new one whenever the adapter is
 * re-materialized, rescaled or replaced, which invalidates this cache through the WeakMap) keeps one
 * merged object that is reused while the caller passes the same input names (a generation's token
 * steps do): per run only the caller's few inputs are written, nothing proportional to the module
 * count is allocated or copied. A run that starts while that object is in use (concurrent runs of
 * the same adapter) gets a fresh one.
 */
import type { Feeds } from './ort-feeds.js';

export class FeedPool {
  private readonly keys: string[];
  private readonly vals: unknown[];
  private readonly own: Set<string>;
  private obj: Feeds | null = null;
  /** The caller's input names `obj` was built for (in order), adapter names excluded. */
  private userKeys: string[] = [];
  private allKeys: string[] = [];
  private busy = false;

  constructor(adapterFeeds: Feeds) {
    this.keys = Object.keys(adapterFeeds);
    this.vals = this.keys.map((k) => adapterFeeds[k]);
    this.own = new Set(this.keys);
  }

  /** `{ ...user, ...adapterFeeds }` (same keys, same values; adapter feeds win a name clash). */
  take(user: Feeds): Feeds {
    const names = Object.keys(user);
    if (!this.busy && this.obj && sameNames(names, this.allKeys)) {
      const o = this.obj;
      for (const k of this.userKeys) o[k] = user[k];
      this.busy = true;
      return o;
    }
    const o: Feeds = {};
    for (const k of names) o[k] = user[k];
    for (let i = 0; i < this.keys.length; i++) o[this.keys[i]!] = this.vals[i];
    if (!this.busy) {
      this.obj = o;
      this.allKeys = names;
      this.userKeys = names.filter((k) => !this.own.has(k));
      this.busy = true;
    }
    return o;
  }

  /** The run that got `feeds` from `take` is done with them. */
  release(feeds: Feeds): void {
    if (feeds !== this.obj) return;
    // Drop the caller's tensors (their memory is theirs to free); the object's shape stays.
    for (const k of this.userKeys) feeds[k] = undefined;
    this.busy = false;
  }
}

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const POOLS = new WeakMap<Feeds, FeedPool>();

/**
 * What a session's run needs done to an adapter feeds object, once, when it is built (dtype.ts: the
 * float32 → float16 conversion on fp16 graphs), attached to the run function.
 */
const PREPARE = Symbol.for('tensorpeft.prepareFeeds');
type Prep = (adapterFeeds: Feeds) => Feeds;

/** `run` carrying `prep` (applied by `runMerged` once per adapter feeds object). */
export function withFeedPrep<F extends object>(run: F, prep: Prep): F {
  Object.defineProperty(run, PREPARE, { value: prep });
  return run;
}

/** Feeds objects made by a pool from prepared adapter feeds: a prepared run passes them as they are. */
const PREPARED = new WeakSet<object>();

export function isPrepared(feeds: object): boolean {
  return PREPARED.has(feeds);
}

/** Run `run` with `user`'s inputs plus `adapterFeeds` (see `FeedPool`). */
export function runMerged<R>(run: (feeds: Feeds, ...rest: unknown[]) => Promise<R>, adapterFeeds: Feeds, user: Feeds, rest: unknown[]): Promise<R> {
  let pool = POOLS.get(adapterFeeds);
  if (!pool) {
    const prep = (run as unknown as Record<symbol, Prep | undefined>)[PREPARE];
    try {
      // Once per adapter feeds object (and session: each session has its own feeds objects).
      pool = new FeedPool(prep ? prep(adapterFeeds) : adapterFeeds);
    } catch (e) {
      return Promise.reject(e);
    }
    POOLS.set(adapterFeeds, pool);
  }
  const p = pool;
  const merged = p.take(user);
  PREPARED.add(merged);
  let r: Promise<R>;
  try {
    r = run(merged, ...rest);
  } catch (e) {
    p.release(merged);
    throw e;
  }
  return Promise.resolve(r).finally(() => p.release(merged));
}
