#!/usr/bin/env bash
# Rebuild the SIMD kernels from csrc/*.c into src/ (or the directory given as $1):
#   kernels.wasm     own memory, single-threaded
#   kernels-mt.wasm  imports a shared memory (wasm threads): the same code, run by worker threads
# Needs clang-14 + wasm-ld-14 (Debian: apt-get install -y clang-14 lld-14). The flags make the
# output depend only on the sources and the toolchain version: no debug info, no names, one
# fixed file order, sources passed by relative path, no temp-file names embedded.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR="${1:-src}"
CLANG="${CLANG:-clang-14}"
if ! command -v "$CLANG" >/dev/null 2>&1; then
  echo "build:wasm: $CLANG not found (apt-get install -y clang-14 lld-14)" >&2
  exit 1
fi
SOURCES=(csrc/gemm.c csrc/tt.c csrc/dense.c csrc/cp.c csrc/tucker.c csrc/apply.c csrc/materialize.c)
# clang-14 runs the linker as "wasm-ld"; Debian names it wasm-ld-14 and keeps the plain name in
# LLVM 14's own bin directory, so point -B there.
LLVM_BIN="$(dirname "$(readlink -f "$(command -v "$CLANG")")")"
CFLAGS=(--target=wasm32 -nostdlib -O3 -msimd128 -mbulk-memory -ffreestanding -fno-builtin
  -std=c11 -Wall -Wextra -Werror -Wno-unused-parameter -g0 -B"$LLVM_BIN")
LDFLAGS=(-Wl,--no-entry -Wl,--strip-all -Wl,--export=__heap_base -Wl,--stack-first -Wl,-z,stack-size=65536)

build() { # out, extra flags…
  local out="$1"
  shift
  local tmp
  tmp="$(mktemp "$out.XXXXXX")"
  if ! "$CLANG" "${CFLAGS[@]}" "${LDFLAGS[@]}" "$@" -o "$tmp" "${SOURCES[@]}"; then
    rm -f "$tmp"
    exit 1
  fi
  # Threads share one memory, so the kernels must not use the shadow stack (one per instance
  # would overlap): no global (__stack_pointer) may be touched.
  if command -v llvm-objdump-14 >/dev/null 2>&1 && llvm-objdump-14 -d "$tmp" | grep -q 'global\.[gs]et'; then
    rm -f "$tmp"
    echo "build:wasm: $out uses a global (the shadow stack): keep arrays and address-taken locals out of csrc/" >&2
    exit 1
  fi
  chmod 644 "$tmp"
  mv "$tmp" "$out"
  echo "build:wasm: wrote $out ($(wc -c <"$out") bytes)"
}

build "$OUT_DIR/kernels.wasm" -Wl,--max-memory=4294967296
build "$OUT_DIR/kernels-mt.wasm" -matomics -Wl,--import-memory -Wl,--shared-memory -Wl,--max-memory=2147483648
