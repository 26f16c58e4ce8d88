/**
 * Vitest reporter that ends the run with one plain line, `tests: N passed, N failed`, so the
 * outcome is readable by tools that do not parse vitest's own summary. It prints from
 * `onFinished`, which runs after the default reporter's summary, so the line comes last.
 */
import type { File, Task } from '@vitest/runner';
import type { Reporter } from 'vitest/reporters';

function count(tasks: readonly Task[], acc: { passed: number; failed: number; skipped: number }): void {
  for (const t of tasks) {
    if (t.type === 'suite') {
      count(t.tasks, acc);
      continue;
    }
    const state = t.result?.state;
    if (state === 'pass') acc.passed++;
    else if (state === 'fail') acc.failed++;
    else acc.skipped++;
  }
}

export default class SummaryReporter implements Reporter {
  onFinished(files: File[] = [], errors: unknown[] = []): void {
    const acc = { passed: 0, failed: 0, skipped: 0 };
    for (const f of files) {
      // A file that failed to load has no tests but is a failure.
      if (f.result?.state === 'fail' && f.tasks.length === 0) acc.failed++;
      count(f.tasks, acc);
    }
    acc.failed += errors.length;
    process.stdout.write(`\ntests: ${acc.passed} passed, ${acc.failed} failed${acc.skipped ? `, ${acc.skipped} skipped` : ''}\n`);
  }
}
