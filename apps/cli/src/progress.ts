/** A one-line progress bar for long commands on a terminal's stderr, with the time left. */
import type { ConvertProgress } from '@tensorpeft/core';

const WIDTH = 30;

/** `12s`, `3m05s`, `1h02m`. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/**
 * Time left at this rate: elapsed · (100 − p) / p. Undefined until the estimate means something
 * (1 % done and a second elapsed: the first steps include warm-up).
 */
export function etaSeconds(progress: number, elapsedMs: number): number | undefined {
  if (!(progress >= 1) || progress >= 100 || elapsedMs < 1000) return undefined;
  return ((elapsedMs / 1000) * (100 - progress)) / progress;
}

/** The bar's text (without the leading carriage return). */
export function formatProgress(p: ConvertProgress, elapsedMs: number): string {
  const pct = Math.min(Math.max(p.progress, 0), 100);
  const filled = Math.round((pct / 100) * WIDTH);
  const eta = etaSeconds(pct, elapsedMs);
  const extra = [
    p.iteration !== undefined ? `it ${p.iteration}` : '',
    p.rel_error !== undefined ? `rel ${p.rel_error.toFixed(4)}` : '',
    eta !== undefined ? `eta ${formatDuration(eta)}` : '',
  ]
    .filter(Boolean)
    .join(' ');
  return `[${'#'.repeat(filled)}${'.'.repeat(WIDTH - filled)}] ${p.progress.toFixed(0).padStart(3)}% ${p.status.padEnd(7)} ${extra}`;
}

/** Draws on a TTY stream, redrawn at most every 100 ms; `done()` clears the line. */
export function progressBar(stream: NodeJS.WriteStream, now: () => number = Date.now): { update: (p: ConvertProgress) => void; done: () => void } {
  const start = now();
  let last = 0;
  return {
    update(p) {
      const t = now();
      if (t - last < 100 && p.status !== 'done') return;
      last = t;
      stream.write(`\r${formatProgress(p, t - start)}\x1b[K`);
    },
    done() {
      stream.write('\r\x1b[K');
    },
  };
}
