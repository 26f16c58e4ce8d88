/**
 * The folder relative paths on the command line are relative to. `pnpm tensorpeft …` runs the root
 * script in the repository root, whatever folder the user typed it in; pnpm (like npm) passes that
 * folder as INIT_CWD. Only the `tensorpeft` script itself is redirected: any other script that runs
 * the CLI (`pnpm bench`, a user's own `cd sub && tensorpeft …`) chose its working folder.
 */
export function callerDir(env: NodeJS.ProcessEnv = process.env, cwd: string = process.cwd()): string {
  return env.npm_lifecycle_event === 'tensorpeft' && env.INIT_CWD ? env.INIT_CWD : cwd;
}
