// `check:wasm`: rebuild csrc/*.c into a temp directory and compare both binaries byte for byte
// with the committed src/kernels.wasm and src/kernels-mt.wasm. Exit 1 on a mismatch (the committed binary is stale or the build is not
// reproducible), 0 when equal, and 0 with a note when clang-14 is not installed (a fresh clone
// needs no C toolchain; CI installs it to run this check).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const clang = process.env.CLANG ?? 'clang-14';
if (spawnSync(clang, ['--version'], { stdio: 'ignore' }).status !== 0) {
  console.log(`check:wasm: ${clang} not found; skipping the reproducibility check (apt-get install -y clang-14 lld-14 to run it)`);
  process.exit(0);
}
const dir = mkdtempSync(path.join(tmpdir(), 'tensorpeft-wasm-'));
try {
  const r = spawnSync('bash', [path.join(root, 'scripts/build-wasm.sh'), dir], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) {
    console.error('check:wasm: rebuild failed');
    process.exit(1);
  }
  let bad = 0;
  for (const name of ['kernels.wasm', 'kernels-mt.wasm']) {
    const built = readFileSync(path.join(dir, name));
    const committed = readFileSync(path.join(root, 'src', name));
    if (!built.equals(committed)) {
      bad++;
      console.error(
        `check:wasm: src/${name} (${committed.length} bytes) differs from a rebuild of csrc/ (${built.length} bytes); run \`pnpm --filter @tensorpeft/kernels-wasm build:wasm\` and commit the result`,
      );
    } else console.log(`check:wasm: src/${name} is reproducible (${built.length} bytes, ${clang})`);
  }
  if (bad) process.exit(1);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
