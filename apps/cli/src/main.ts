/** Command dispatch for `tensorpeft`. Errors are rendered here, once, without stack traces. */
import { TensorPeftError, escapeControl } from '@tensorpeft/core';
// The wasm backend registers itself with core; getBackend() prefers it and falls back to js.
import '@tensorpeft/kernels-wasm/register';
import { UsageError } from './args.js';
import { convertCommand, convertHelp } from './commands/convert.js';
import { demoCommand, demoHelp } from './commands/demo.js';
import { diffCommand, diffHelp } from './commands/diff.js';
import { exportCommand, exportHelp } from './commands/export.js';
import { importCommand, importHelp } from './commands/import.js';
import { benchCommand, benchHelp } from './commands/bench.js';
import { initCommand, initHelp } from './commands/init.js';
import { makeModelCommand, makeModelHelp } from './commands/make-model.js';
import { inspectCommand, inspectHelp } from './commands/inspect.js';
import { paramsCommand, paramsHelp } from './commands/params.js';
import { selftestCommand, selftestHelp } from './commands/selftest.js';
import { verifyCommand, verifyHelp } from './commands/verify.js';
import type { CliIO } from './io.js';

type Command = (argv: string[], io: CliIO) => Promise<number>;

const COMMANDS: Record<string, { run: Command; help: string }> = {
  params: { run: paramsCommand, help: paramsHelp },
  inspect: { run: inspectCommand, help: inspectHelp },
  init: { run: initCommand, help: initHelp },
  export: { run: exportCommand, help: exportHelp },
  import: { run: importCommand, help: importHelp },
  diff: { run: diffCommand, help: diffHelp },
  demo: { run: demoCommand, help: demoHelp },
  'make-model': { run: makeModelCommand, help: makeModelHelp },
  convert: { run: convertCommand, help: convertHelp },
  selftest: { run: selftestCommand, help: selftestHelp },
  bench: { run: benchCommand, help: benchHelp },
  verify: { run: verifyCommand, help: verifyHelp },
};

export const usage = `tensorpeft <command> [options]

${Object.values(COMMANDS)
  .map((c) => c.help)
  .join('\n\n')}`;

/** Run the CLI; returns the exit code. */
export async function main(argv: string[], io: CliIO): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    io.out(usage);
    return name ? 0 : 2;
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    io.err(`tensorpeft: unknown command "${escapeControl(name)}" (expected one of ${Object.keys(COMMANDS).join(', ')})`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    io.out(cmd.help);
    return 0;
  }
  try {
    return await cmd.run(rest, io);
  } catch (e) {
    if (e instanceof TensorPeftError) {
      // Core escapes control characters in its messages; escape again in case a subclass did not.
      io.err(`tensorpeft ${name}: ${e.name}: ${escapeControl(e.message)}`);
      return 1;
    }
    if (e instanceof UsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.err(`tensorpeft ${name}: ${escapeControl((e as Error).message)}\n\n${cmd.help}`);
      return 2;
    }
    if ((e as { code?: string }).code === 'ENOENT' || (e as { code?: string }).code === 'EACCES') {
      io.err(`tensorpeft ${name}: ${escapeControl((e as Error).message)}`);
      return 1;
    }
    throw e;
  }
}
