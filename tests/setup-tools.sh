#!/usr/bin/env bash
# tests/setup-tools.sh: extra Debian packages for the operator-experience tests (as root, idempotent):
#   qemu-user-static + libc6:arm64   run the arm64 glibc release binary here (tests/e2e/release.test.ts)
#   docker-compose, podman-compose   check that `u7s render`'s compose file is accepted as it is
#   zsh, fish                        syntax-check the completion scripts
#   hyperfine                        bench/ (optional there: it falls back to its own loop)
#   binutils                         readelf: what the musl release binaries load (tests/e2e/release.test.ts)
#   iperf3                           bench/two-hosts.ts, bench/port-forward.ts: the host side (daemon preseeded off)
#   time                             /usr/bin/time -v: peak memory of u7s refusing hostile files (tests/e2e/hostile-files.test.ts)
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "setup-tools.sh: run as root (it installs packages)" >&2; exit 1; }
PACKAGES=(qemu-user-static libc6:arm64 docker-compose podman-compose zsh fish hyperfine binutils iperf3 time)
dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup-tools.sh: installing ${missing[*]}"
  # iperf3 asks whether to start its daemon (a listener on port 5201 of the host): no (also its default)
  echo 'iperf3 iperf3/start_daemon boolean false' | debconf-set-selections
  for try in 1 2 3; do
    if timeout 600 apt-get update -q >/dev/null && timeout 1200 env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; then
      break
    fi
    [ "$try" = 3 ] && { echo "setup-tools.sh: apt-get install failed" >&2; exit 1; }
    sleep 5
  done
fi
echo "setup-tools.sh: ready: $(qemu-aarch64-static --version | head -n 1); docker-compose $(docker-compose version --short 2>/dev/null); $(podman-compose version 2>/dev/null | grep -m1 podman-compose || echo podman-compose)"
