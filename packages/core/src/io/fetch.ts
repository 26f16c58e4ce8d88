/**
 * One HTTP(S) download with the guards untrusted servers need: a size cap checked on the declared
 * length and on the streamed bytes, a connect timeout (until response headers) and an idle timeout
 * (between body chunks), a redirect policy, and a typed error for every way it can fail. Browser-
 * safe: only `fetch`, `AbortController` and streams.
 */
import { FetchError, FetchRedirectError, FetchTimeoutError, SizeLimitError } from '../errors.js';

/** Default cap on the bytes of one downloaded or read file. */
export const DEFAULT_MAX_BYTES = 256 * 1024 * 1024;
/** Default time to wait for response headers. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;
/** Default longest pause between two body chunks. */
export const DEFAULT_IDLE_TIMEOUT_MS = 30_000;
/**
 * Default limit on a whole download, headers to last byte: a server dripping a few bytes just inside
 * the idle timeout would otherwise hold a load forever (256 MiB at 1 MB/s fits in it).
 */
export const DEFAULT_TIMEOUT_MS = 600_000;
/** Redirect hops followed at most (like browsers' 20, but adapters have no reason for long chains). */
const MAX_REDIRECTS = 10;

/**
 * Which redirects a download follows: `same-origin` (default for URLs: a server cannot send the
 * client to another host), `follow` (any http(s) origin: the Hub serves large files from CDN hosts),
 * or `error` (none). Origins in `allowedOrigins` are followed under `same-origin` too.
 */
export type RedirectPolicy = 'same-origin' | 'follow' | 'error';

export interface FetchBytesOptions {
  /** Largest size, checked against Content-Length and while streaming (default 256 MiB). */
  maxBytes?: number;
  fetch?: typeof fetch;
  /** Milliseconds until response headers (default 30 s; Infinity: none). */
  connectTimeoutMs?: number;
  /** Longest pause between body chunks, in milliseconds (default 30 s; Infinity: none). */
  idleTimeoutMs?: number;
  /** Limit on the whole download, request to last byte, in milliseconds (default 10 min; Infinity: none). */
  timeoutMs?: number;
  redirect?: RedirectPolicy;
  /** Extra origins (`https://cdn.example.com`) redirects may go to under `same-origin`. */
  allowedOrigins?: readonly string[];
  /** Bytes received so far, and the declared total when the server sent one. */
  onProgress?: (loaded: number, total: number | undefined) => void;
  /** Cancels the download (a FetchError). */
  signal?: AbortSignal;
}

function errorText(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  // undici puts the socket error in `cause` ("fetch failed" / "terminated" say nothing).
  const cause = (e as { cause?: unknown }).cause;
  return cause instanceof Error && cause.message ? `${e.message} (${cause.message})` : e.message;
}

/** Run `p` with a timer that aborts `ctl` and rejects with `onTimeout()` after `ms`. */
async function withTimeout<T>(p: Promise<T>, ms: number, ctl: AbortController, onTimeout: () => Error): Promise<T> {
  if (!Number.isFinite(ms)) return p;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = onTimeout();
      ctl.abort(err);
      reject(err);
    }, ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function originOf(url: string): string {
  return new URL(url).origin;
}

/**
 * GET `url` following redirects by `policy`. With `redirect: 'manual'` (Node, workers) every hop is
 * checked before it is requested; where the platform hides redirects (browsers answer `manual` with
 * an opaque response) the request is repeated with `follow` and the final URL is checked before any
 * body byte is read.
 */
async function request(url: string, o: Required<Pick<FetchBytesOptions, 'connectTimeoutMs' | 'redirect' | 'allowedOrigins'>> & { fetchFn: typeof fetch; ctl: AbortController; total: Deadline }): Promise<Response> {
  const start = originOf(url);
  const allowed = (target: string): boolean => {
    if (o.redirect === 'follow') return /^https?:$/.test(new URL(target).protocol);
    return o.redirect === 'same-origin' && (originOf(target) === start || o.allowedOrigins.includes(originOf(target)));
  };
  const refuse = (to: string): FetchRedirectError =>
    new FetchRedirectError(o.redirect === 'error' ? 'redirects are not allowed for this download' : 'redirect to another origin refused (pass redirect: "follow" or allowedOrigins to allow it)', {
      file: url,
      expected: o.redirect === 'error' ? 'no redirect' : `${start}${o.allowedOrigins.length ? ` or ${o.allowedOrigins.join(', ')}` : ''}`,
      found: to,
    });
  // Called unbound: browsers throw "Illegal invocation" when the native fetch runs with `this` = o.
  const fetchFn = o.fetchFn;
  const get = async (u: string, redirect: RequestRedirect): Promise<Response> => {
    try {
      const left = o.total.left();
      return await withTimeout(fetchFn(u, { redirect, signal: o.ctl.signal }), Math.min(o.connectTimeoutMs, left), o.ctl, () =>
        left < o.connectTimeoutMs ? o.total.error(0) : new FetchTimeoutError('no response within the connect timeout', { file: u, expected: `headers within ${o.connectTimeoutMs} ms` }),
      );
    } catch (e) {
      if (e instanceof FetchError) throw e;
      const reason = o.ctl.signal.reason;
      if (reason instanceof FetchError) throw reason;
      throw new FetchError(`request failed: ${errorText(e)}`, { file: u });
    }
  };
  let current = url;
  for (let hop = 0; ; hop++) {
    const res = await get(current, 'manual');
    if (res.type === 'opaqueredirect') {
      // Browser: the hop is invisible. Follow, then check where it ended before reading the body.
      if (o.redirect === 'error') throw refuse('a redirect');
      const followed = await get(current, 'follow');
      if (followed.redirected && !allowed(followed.url)) {
        await followed.body?.cancel().catch(() => undefined);
        throw refuse(followed.url);
      }
      return followed;
    }
    if (res.status < 300 || res.status >= 400 || res.status === 304) return res;
    const location = res.headers.get('location');
    await res.body?.cancel().catch(() => undefined);
    if (location === null) return res;
    const next = new URL(location, current).href;
    if (!allowed(next)) throw refuse(next);
    if (hop + 1 >= MAX_REDIRECTS) throw new FetchRedirectError('too many redirects', { file: url, expected: `≤ ${MAX_REDIRECTS} hops`, found: next });
    current = next;
  }
}

/** The total deadline of one download: time left, and its error. */
interface Deadline {
  left(): number;
  error(received: number): FetchTimeoutError;
}

function deadline(url: string, ms: number): Deadline {
  const t0 = Date.now();
  return {
    left: () => (Number.isFinite(ms) ? Math.max(0, ms - (Date.now() - t0)) : Infinity),
    error: (received) => new FetchTimeoutError('download did not finish within its total timeout', { file: url, expected: `the whole file within ${ms} ms`, found: `${received} bytes received` }),
  };
}

/**
 * Download one file. Every failure is a FetchError: HTTP status, connection refused / reset (also
 * in the middle of the body), timeouts (FetchTimeoutError), redirects (FetchRedirectError), sizes
 * over the cap (SizeLimitError, before allocating when the length is declared), a body shorter than
 * its Content-Length. `fetchBytes(url, maxBytes, fetchFn)` is the older form.
 */
export async function fetchBytes(url: string, options: FetchBytesOptions | number = {}, fetchFn?: typeof fetch): Promise<Uint8Array> {
  const opts: FetchBytesOptions = typeof options === 'number' ? { maxBytes: options, ...(fetchFn ? { fetch: fetchFn } : {}) } : options;
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
  const idleMs = opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  const total = deadline(url, opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  const ctl = new AbortController();
  const onAbort = (): void => ctl.abort(new FetchError('download cancelled', { file: url }));
  if (opts.signal?.aborted) onAbort();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const res = await request(url, {
      fetchFn: opts.fetch ?? globalThis.fetch,
      ctl,
      total,
      connectTimeoutMs: opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      redirect: opts.redirect ?? 'same-origin',
      allowedOrigins: (opts.allowedOrigins ?? []).map((o) => originOf(o)),
    });
    if (!res.ok) {
      await res.body?.cancel().catch(() => undefined);
      throw new FetchError('HTTP request failed', { file: url, expected: '2xx', found: `${res.status} ${res.statusText}`.trim() });
    }
    const tooBig = (found: string): SizeLimitError => new SizeLimitError('download is larger than the size limit', { file: url, expected: `≤ ${maxBytes} bytes`, found });
    const declaredText = res.headers.get('content-length');
    const declared = declaredText !== null && /^\s*\d+\s*$/.test(declaredText) ? Number(declaredText) : undefined;
    if (declared !== undefined && declared > maxBytes) {
      await res.body?.cancel().catch(() => undefined);
      throw tooBig(`Content-Length ${declared}`);
    }
    if (!res.body) {
      const buf = new Uint8Array(await res.arrayBuffer());
      if (buf.length > maxBytes) throw tooBig(`${buf.length} bytes`);
      opts.onProgress?.(buf.length, declared);
      return buf;
    }
    const reader = res.body.getReader();
    const chunks: Uint8Array[] = [];
    let received = 0;
    for (;;) {
      let step: ReadableStreamReadResult<Uint8Array>;
      try {
        // The idle timeout, or what is left of the total one when that comes first (a slow drip).
        const left = total.left();
        step = await withTimeout(reader.read(), Math.min(idleMs, left), ctl, () =>
          left < idleMs
            ? total.error(received)
            : new FetchTimeoutError('download stalled: no data within the idle timeout', { file: url, expected: `a chunk within ${idleMs} ms`, found: `${received} bytes received` }),
        );
      } catch (e) {
        await reader.cancel().catch(() => undefined);
        if (e instanceof FetchError) throw e;
        const reason = ctl.signal.reason;
        if (reason instanceof FetchError) throw reason;
        throw new FetchError(`connection failed during the download: ${errorText(e)}`, { file: url, expected: declared !== undefined ? `${declared} bytes` : 'the whole body', found: `${received} bytes received` });
      }
      if (step.done) break;
      received += step.value.length;
      if (received > maxBytes) {
        await reader.cancel().catch(() => undefined);
        throw tooBig(`more than ${maxBytes} bytes received`);
      }
      chunks.push(step.value);
      opts.onProgress?.(received, declared);
    }
    // Runtimes that do not enforce Content-Length would hand over a truncated file as complete.
    // (A compressed body is declared by its encoded length, decoded by fetch: not comparable.)
    const encoding = (res.headers.get('content-encoding') ?? 'identity').trim().toLowerCase();
    if (declared !== undefined && encoding === 'identity' && received !== declared) {
      throw new FetchError('download ended before its declared length', { file: url, expected: `${declared} bytes (Content-Length)`, found: `${received} bytes` });
    }
    const out = new Uint8Array(received);
    let off = 0;
    for (const c of chunks) {
      out.set(c, off);
      off += c.length;
    }
    return out;
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }
}
