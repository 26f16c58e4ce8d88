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
import { trainCommand, trainHelp } from './commands/train.js';
import { fromFsError } from './file-errors.js';
import type { CliIO } from './io.js';
import { VERSION } from './version.js';

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
  train: { run: trainCommand, help: trainHelp },
};

/** Every command's name (for the help and the tests). */
export const COMMAND_NAMES: readonly string[] = Object.keys(COMMANDS);

/**
 * Commands with a text output of their own and a `--json` option; every other command prints JSON
 * only, and takes `--json` as a no-op so that scripts can pass it to any command.
 */
const OWN_JSON_FLAG = new Set(['convert', 'demo', 'selftest', 'bench']);

export const usage = `tensorpeft <command> [options]
tensorpeft --version [--json]

Every command takes --json (JSON on stdout; errors as one JSON line on stderr). Relative paths are
relative to the folder the command is typed in (also under \`pnpm tensorpeft\`, which runs in the
repository root).

${Object.values(COMMANDS)
  .map((c) => c.help)
  .join('\n\n')}`;

/** Run the CLI; returns the exit code. */
export async function main(argv: string[], io: CliIO): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--version' || name === '-V' || name === 'version') {
    io.out(rest.includes('--json') ? JSON.stringify({ name: '@tensorpeft/cli', version: VERSION }) : VERSION);
    return 0;
  }
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
  const json = rest.includes('--json');
  try {
    return await cmd.run(json && !OWN_JSON_FLAG.has(name) ? rest.filter((a) => a !== '--json') : rest, io);
  } catch (caught) {
    // A file the user named that cannot be opened: the same typed one-liner as other bad input.
    const e = fromFsError(caught) ?? caught;
    if (json && e instanceof TensorPeftError) {
      io.err(JSON.stringify({ error: { name: e.name, code: e.code, message: e.message, ...plainDetails(e) } }));
      return 1;
    }
    const usageError = e instanceof UsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
    if (json && usageError) {
      io.err(JSON.stringify({ error: { name: 'UsageError', code: 'USAGE', message: (e as Error).message } }));
      return 2;
    }
    if (e instanceof TensorPeftError) {
      // Core escapes control characters in its messages; escape again in case a subclass did not.
      io.err(`tensorpeft ${name}: ${e.name}: ${escapeControl(e.message)}`);
      return 1;
    }
    if (usageError) {
      io.err(`tensorpeft ${name}: ${escapeControl((e as Error).message)}\n\n${cmd.help}`);
      return 2;
    }
    throw e;
  }
}

/** The details of an error that are names or numbers (file, tensor, field, scalar expected/found). */
function plainDetails(e: TensorPeftError): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const [k, v] of Object.entries(e.details)) if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') out[k] = v;
  return out;
}
