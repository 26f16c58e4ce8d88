import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { Backend } from './types.js';

// The registry is module-global state. Every test loads fresh copies of the registry (and of the
// modules whose classes it uses, so `instanceof` checks line up) after vi.resetModules(), so the
// backends registered here never leak into another test or test file.
async function fresh() {
  vi.resetModules();
  const reg = await import('./registry.js');
  const js = await import('./js.js');
  const errors = await import('../errors.js');
  return { ...reg, JsBackend: js.JsBackend, TensorPeftError: errors.TensorPeftError };
}

function fakeBackend(name: string): Backend {
  return {
    name,
    evaluate: () => Promise.resolve(new Float32Array()),
    materialize: () => Promise.resolve([]),
    merge: () => Promise.resolve(),
    apply: () => Promise.resolve(),
  };
}

describe('backend registry', () => {
  beforeEach(() => {
    vi.resetModules();
  });

  it('returns the js backend when nothing else is registered, and the same instance each time', async () => {
    const r = await fresh();
    expect(r.registeredBackends()).toEqual(['js']);
    const b = await r.getBackend();
    expect(b).toBeInstanceOf(r.JsBackend);
    expect(b.name).toBe('js');
    expect(await r.getBackend()).toBe(b);
    expect(await r.getBackend('js')).toBe(b);
  });

  it('falls back to js when a higher-priority factory throws, and does not retry it', async () => {
    const r = await fresh();
    const factory = vi.fn((): Backend => {
      throw new Error('no GPU here');
    });
    r.registerBackend('test-failing-sync', factory, 100);
    expect(r.registeredBackends()).toEqual(['test-failing-sync', 'js']);
    const b = await r.getBackend();
    expect(b.name).toBe('js');
    expect(b).toBeInstanceOf(r.JsBackend);
    expect((await r.getBackend()).name).toBe('js');
    expect(factory).toHaveBeenCalledTimes(1);
  });

  it('falls back when a factory returns a rejected promise', async () => {
    const r = await fresh();
    r.registerBackend('test-failing-async', () => Promise.reject(new Error('adapter request failed')), 50);
    expect((await r.getBackend()).name).toBe('js');
  });

  it('falls back down the priority list to the next backend that initializes', async () => {
    const r = await fresh();
    r.registerBackend('test-top', () => {
      throw new Error('nope');
    }, 30);
    r.registerBackend('test-middle', () => fakeBackend('test-middle'), 20);
    r.registerBackend('test-low', () => fakeBackend('test-low'), -5);
    expect(r.registeredBackends()).toEqual(['test-top', 'test-middle', 'js', 'test-low']);
    expect((await r.getBackend()).name).toBe('test-middle');
  });

  it('prefers a working higher-priority backend and ignores lower-priority ones', async () => {
    const r = await fresh();
    r.registerBackend('test-fast', () => fakeBackend('test-fast'), 10);
    r.registerBackend('test-slow', () => fakeBackend('test-slow'), -1);
    expect((await r.getBackend()).name).toBe('test-fast');
    expect((await r.getBackend('test-slow')).name).toBe('test-slow');
    expect((await r.getBackend('js')).name).toBe('js');
  });

  it('runs a factory once even for concurrent first calls', async () => {
    const r = await fresh();
    let release!: () => void;
    const gate = new Promise<void>((res) => (release = res));
    const factory = vi.fn(async () => {
      await gate;
      return fakeBackend('test-async-init');
    });
    r.registerBackend('test-async-init', factory, 10);
    const p1 = r.getBackend();
    const p2 = r.getBackend();
    const p3 = r.getBackend('test-async-init');
    release();
    const [b1, b2, b3] = await Promise.all([p1, p2, p3]);
    expect(factory).toHaveBeenCalledTimes(1);
    expect(b1).toBe(b2);
    expect(b1).toBe(b3);
    expect(b1.name).toBe('test-async-init');
  });

  it('getBackend(name) of a failing backend reports its error instead of silently falling back', async () => {
    const r = await fresh();
    r.registerBackend('test-broken', () => {
      throw new Error('wasm compile failed');
    }, -10);
    await expect(r.getBackend('test-broken')).rejects.toThrow('wasm compile failed');
    // The automatic choice is unaffected (js outranks it).
    expect((await r.getBackend()).name).toBe('js');
  });

  it('getBackend of an unknown name throws a typed error naming the known backends', async () => {
    const r = await fresh();
    r.registerBackend('test-known-a', () => fakeBackend('test-known-a'), 5);
    const err = await r.getBackend('nope').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(r.TensorPeftError);
    const msg = (err as Error).message;
    expect(msg).toContain('unknown backend');
    expect(msg).toContain('nope');
    expect(msg).toContain('js');
    expect(msg).toContain('test-known-a');
    expect((err as InstanceType<typeof r.TensorPeftError>).details).toMatchObject({ field: 'backend', found: 'nope' });
  });

  it('re-registering a name replaces its factory and priority', async () => {
    const r = await fresh();
    r.registerBackend('test-re', () => fakeBackend('test-re-v1'), -1);
    r.registerBackend('test-re', () => fakeBackend('test-re-v2'), 1);
    expect(r.registeredBackends()).toEqual(['test-re', 'js']);
    expect((await r.getBackend()).name).toBe('test-re-v2');
  });
});
