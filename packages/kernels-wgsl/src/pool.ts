/**
 * GPUBuffer pool. Buffers are keyed by usage and size: scratch buffers (heaps, parameter and
 * read-back buffers) by power-of-two size class, so a sequence of similar calls reuses the same
 * few buffers; result buffers handed to the caller (GPU-resident A′/B′) by their exact size, so an
 * adapter swap of the same shapes gets back the buffers the previous adapter released. Nothing is
 * freed implicitly: `destroy()` (or the backend's) destroys every buffer the pool ever created.
 */

export interface PoolStats {
  /** Buffers created since the pool was made. */
  created: number;
  /** Buffers currently alive (in use + idle). */
  live: number;
  /** Bytes of live buffers. */
  liveBytes: number;
  /** Idle buffers waiting for reuse. */
  idle: number;
}

export class BufferPool {
  private readonly free = new Map<string, GPUBuffer[]>();
  private readonly all = new Set<GPUBuffer>();
  private created = 0;
  private bytes = 0;

  constructor(private readonly device: GPUDevice) {}

  static sizeClass(bytes: number): number {
    let s = 256;
    while (s < bytes) s *= 2;
    return s;
  }

  /** A buffer of at least `bytes` (exactly `bytes`, rounded up to 4, with `exact`). */
  acquire(bytes: number, usage: GPUBufferUsageFlags, exact = false, label?: string): GPUBuffer {
    const size = exact ? Math.max(4, Math.ceil(bytes / 4) * 4) : BufferPool.sizeClass(bytes);
    const key = `${usage}:${size}`;
    const list = this.free.get(key);
    const reused = list?.pop();
    if (reused) return reused;
    const b = this.device.createBuffer({ size, usage, label: label ?? `tensorpeft-${size}` });
    this.all.add(b);
    this.created++;
    this.bytes += size;
    return b;
  }

  /** Give a buffer back for reuse (it must come from this pool and not be mapped). */
  release(b: GPUBuffer): void {
    if (!this.all.has(b)) return;
    const key = `${b.usage}:${b.size}`;
    const list = this.free.get(key) ?? [];
    if (!list.includes(b)) list.push(b);
    this.free.set(key, list);
  }

  /** Destroy idle buffers (memory back to the device; the pool stays usable). */
  trim(): void {
    for (const list of this.free.values()) {
      for (const b of list) {
        this.all.delete(b);
        this.bytes -= b.size;
        b.destroy();
      }
    }
    this.free.clear();
  }

  /** Destroy every buffer, idle or not. */
  destroy(): void {
    for (const b of this.all) b.destroy();
    this.all.clear();
    this.free.clear();
    this.bytes = 0;
  }

  stats(): PoolStats {
    let idle = 0;
    for (const l of this.free.values()) idle += l.length;
    return { created: this.created, live: this.all.size, liveBytes: this.bytes, idle };
  }
}
