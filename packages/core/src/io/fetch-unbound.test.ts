/**
 * The native `fetch` of browsers must be called with `this` = the global (or undefined): called as
 * a method of an options object it throws "TypeError: Illegal invocation". Node's fetch does not
 * check, so this stands in for the browser's with a strict-mode function that does.
 */
import { describe, expect, it } from 'vitest';
import { fetchBytes } from './fetch.js';

describe('fetchBytes calls fetch unbound', () => {
  it('a fetch that refuses any `this` but the global still answers', async () => {
    const calls: unknown[] = [];
    const browserLikeFetch = function (this: unknown, input: RequestInfo | URL): Promise<Response> {
      calls.push(this);
      if (this !== undefined && this !== globalThis) return Promise.reject(new TypeError("Failed to execute 'fetch' on 'Window': Illegal invocation"));
      return Promise.resolve(new Response(new Uint8Array([1, 2, 3]), { status: 200, headers: { 'content-length': '3' } }));
    } as typeof fetch;
    const bytes = await fetchBytes('http://127.0.0.1:9/x.bin', { fetch: browserLikeFetch });
    expect(Array.from(bytes)).toEqual([1, 2, 3]);
    expect(calls).toEqual([undefined]);
  });
});
