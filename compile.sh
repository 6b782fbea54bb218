#!/usr/bin/env bash
# compile.sh [--all]: build dist/u7s for this host; --all also cross-compiles the release
# binaries (linux x64/arm64, glibc/musl) and writes dist/SHA256SUMS. U7S_DIST=DIR writes to DIR
# instead of dist (the tests use it).
set -euo pipefail
cd "$(dirname "$0")"
BUN=node_modules/.bin/bun
[ -x "$BUN" ] || { echo "compile.sh: $BUN missing: run npm install first" >&2; exit 1; }
DIST=${U7S_DIST:-dist}
mkdir -p "$DIST"
# lib/relay/relay-worker.ts: the VXLAN relay's data loop runs in a Worker, whose entry a compiled binary
# must carry as an entry point of its own (https://bun.sh/docs/bundler/executables, "Worker"; lib/relay/relay.ts).
build() { # build OUTFILE [--target T]
  local out=$1; shift
  "$BUN" build --compile --minify --sourcemap=none --format esm --splitting "$@" main.ts lib/relay/relay-worker.ts --outfile "$out.tmp" >/dev/null
  mv "$out.tmp" "$out"
}
# --bytecode: precompiled JavaScriptCore bytecode starts `u7s version` in ~15 ms instead of ~40 ms
# (bench/run.ts). --format esm --splitting: each command's module (lib/commands/_index.ts loads it
# when the command runs) is its own chunk, so `u7s --help` does not load the others (~1 ms). Only for x64; the arm64 builds stay plain source (tests/e2e/release.test.ts runs
# the glibc one under qemu-user-static). The musl builds link libstdc++ and libgcc_s dynamically
# (Bun's runtime): Alpine needs `apk add libstdc++ libgcc` (README, release test).
build "$DIST/u7s" --bytecode
case "${1:-}" in
  --all)
    for t in linux-x64 linux-arm64 linux-x64-musl linux-arm64-musl; do
      case $t in *x64*) extra=--bytecode ;; *) extra= ;; esac
      build "$DIST/u7s-$t" --target "bun-$t" $extra
    done
    (cd "$DIST" && sha256sum u7s-linux-x64 u7s-linux-arm64 u7s-linux-x64-musl u7s-linux-arm64-musl > SHA256SUMS)
    ;;
  "") ;;
  *) echo "usage: compile.sh [--all]" >&2; exit 2 ;;
esac
echo "compile.sh: built in $DIST: $(cd "$DIST" && ls -1 | tr '\n' ' ')" >&2
