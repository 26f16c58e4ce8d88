/**
 * Outcome of one case. `typed`: a TensorPeftError (the project's typed family, any package);
 * `accepted`: loaded, and the result passed every check. Anything else is a finding.
 */
import { TensorPeftError } from '@tensorpeft/core';

export type Outcome =
  | { kind: 'typed'; name: string }
  | { kind: 'accepted' }
  | { kind: 'untyped'; name: string; message: string; stack?: string }
  | { kind: 'nonfinite'; message: string }
  | { kind: 'wrong'; message: string }
  | { kind: 'hang'; message: string }
  | { kind: 'crash'; message: string };

export const FINDINGS: readonly Outcome['kind'][] = ['untyped', 'nonfinite', 'wrong', 'hang', 'crash'];

export function errorOutcome(e: unknown): Outcome {
  if (e instanceof TensorPeftError) return { kind: 'typed', name: e.name };
  const err = e instanceof Error ? e : new Error(String(e));
  return { kind: 'untyped', name: err.name, message: err.message.slice(0, 300), ...(err.stack ? { stack: err.stack.split('\n').slice(0, 6).join('\n') } : {}) };
}

/** Tally of outcomes, with the first few findings kept whole for the report. */
export class Tally {
  readonly counts = new Map<string, number>();
  readonly findings: { target: string; index: number; outcome: Outcome; note?: string }[] = [];
  cases = 0;
  add(target: string, index: number, o: Outcome, note?: string): void {
    this.cases++;
    const key = o.kind === 'typed' ? `typed:${o.name}` : o.kind === 'untyped' ? `untyped:${o.name}` : o.kind;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    if (FINDINGS.includes(o.kind) && this.findings.length < 50) this.findings.push({ target, index, outcome: o, ...(note ? { note } : {}) });
  }
  count(kind: Outcome['kind']): number {
    let n = 0;
    for (const [k, v] of this.counts) if (k === kind || k.startsWith(`${kind}:`)) n += v;
    return n;
  }
  get findingCount(): number {
    return FINDINGS.reduce((a, k) => a + this.count(k), 0);
  }
}
