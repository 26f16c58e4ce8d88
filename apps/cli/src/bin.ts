#!/usr/bin/env node
import { callerDir } from './caller-dir.js';
import { main } from './main.js';
import { processIO } from './io.js';

// Relative paths in arguments (--out, --model, @config.json, adapters) are the caller's.
process.chdir(callerDir());
main(process.argv.slice(2), processIO).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    // Anything reaching here is a bug, not bad input: keep the stack for the report.
    process.stderr.write(`tensorpeft: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exitCode = 70;
  },
);
