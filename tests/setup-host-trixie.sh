#!/usr/bin/env bash
# tests/setup-host-trixie.sh: test host C, running Debian 13 (trixie)'s rootless Podman 5 on pasta (as root).
#
#   bash tests/setup-host-trixie.sh            # build/unpack the root, namespaces, user, podman, images (idempotent)
#   bash tests/setup-host-trixie.sh --status
#   bash tests/setup-host-trixie.sh --down     # remove the namespaces, wrapper, cgroups and hosts.env's C lines
#
# Host C is host A/B's pattern (tests/setup-hosts.sh) with a different operating system under the
# engine: a debootstrapped Debian 13 root (tests/.work/trixie-root, cached as a tarball in
# tests/.work/images) becomes the root of a mount namespace of its own (pivot_root), so podman,
# pasta, conmon, runc and their libraries are Debian 13's; this machine's Debian 12 packages are
# never touched. Network namespace u7s-host-c (10.213.0.3 on setup-hosts.sh's bridge), UTS
# namespace (hostname host-c), user u7shostc (exists only inside the root) with subuid/subgid and
# delegated cgroups. Podman has no daemon: every `podman` through the wrapper is Debian 13's CLI
# with its default rootless network, pasta. /usr/local/bin/u7s-host-c-exec CMD... runs CMD there.
# The machine's /tmp is host C's /tmp (as hosts A and B share it: the harness puts dist/u7s there).
# Needs tests/setup-hosts.sh first (the bridge namespace) and tests/setup-engines.sh (images).
# Adds U7S_HOST_C_* to tests/.work/hosts.env (read by tests/e2e/harness.ts). Knob: U7S_DEBIAN_MIRROR.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
WORK=$HERE/.work
IMAGES=$WORK/images
ENGINES_ENV=$WORK/engines.env
HOSTS_ENV=$WORK/hosts.env
TROOT=$WORK/trixie-root         # the unpacked Debian 13 root (host C's /)
RUN_DIR=/run/u7s-test-hosts     # shared with setup-hosts.sh (its --down removes it)
NSDIR=$RUN_DIR/host-c           # a private bind mount holding the mount namespace handle
LOG_DIR=/var/log/u7s-test-hosts
SAFE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
SUITE=trixie
PACKAGES=podman,passt,uidmap,runc,conmon,netavark,aardvark-dns,nftables,catatonit,slirp4netns,iptables,iproute2,procps,curl,ca-certificates,docker.io,docker-cli,rootlesskit
NET_NS=u7s-hosts-net BRIDGE=br0 PREFIX=10.213.0
GATEWAY=$PREFIX.254
NS=u7s-host-c HOSTNAME_=host-c IP=$PREFIX.3
U=u7shostc
UID_=2213 GID_=2213             # fixed, above the machine's own users: the user lives only in host C's root
SUBID_START=2130000000          # far from the machine's /etc/subuid ranges (100000 + 65536 per user)
HOME_=/home/$U XDG_=/run/user/$UID_
W=/usr/local/bin/u7s-host-c-exec
MNT=$NSDIR/mnt UTS=$RUN_DIR/uts-c

T0=$(date +%s%N)
log() { echo "[setup-host-trixie] $*" >&2; }
die() { echo "[setup-host-trixie] ERROR: $*" >&2; exit 1; }
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
phase() { # phase NAME FUNCTION: run it and print how long it took
  local s; s=$(date +%s%N); "$2"
  local ms; ms=$(ms_since "$s"); log "$(printf 'phase %-22s %3d.%01ds' "$1" $((ms / 1000)) $((ms % 1000 / 100)))"
}
[ "$(id -u)" = 0 ] || die "run as root: it creates namespaces and unpacks a root file system"
export PATH=$SAFE_PATH:$PATH
ns_exists() { [ -e "/run/netns/$1" ]; }
is_mount() { findmnt -n "$1" >/dev/null 2>&1; }
cg_dirs() { # the delegated cgroup directories, as tests/setup-hosts.sh makes them
  if [ -f /sys/fs/cgroup/cgroup.controllers ]; then echo "/sys/fs/cgroup/u7s-$U"; return; fi
  [ -d /sys/fs/cgroup/systemd ] && echo "/sys/fs/cgroup/systemd/u7s-$U"
  [ -f /sys/fs/cgroup/unified/cgroup.controllers ] && echo "/sys/fs/cgroup/unified/u7s-$U"
  return 0
}
as_c() { timeout 600 "$W" "$@"; }
in_root() { chroot "$TROOT" /usr/bin/env -i PATH=$SAFE_PATH LANG=C.UTF-8 "$@"; } # admin steps, before the namespace

# ------------------------------------------------------------------ status / down
status() {
  if ns_exists "$NS"; then echo "netns $NS: $(ip -n "$NS" -4 -br addr show eth0 2>/dev/null | awk '{print $3}')"; else echo "netns $NS: absent"; fi
  if is_mount "$MNT"; then echo "mount namespace: $MNT"; else echo "mount namespace: absent"; fi
  if [ -f "$TROOT/.u7s-key" ]; then echo "root: $TROOT (recipe $(cat "$TROOT/.u7s-key"), $(cat "$TROOT/etc/debian_version"))"; else echo "root: absent"; fi
  [ -x "$W" ] && is_mount "$MNT" && echo "podman: $(as_c podman version --format '{{.Client.Version}}' 2>/dev/null), $(as_c podman ps -q 2>/dev/null | wc -l) containers running"
  return 0
}
kill_cgroup() { # kill_cgroup DIR: SIGKILL every process in DIR and below (only host C's user lives there), rmdir it
  local d=$1 p
  [ -d "$d" ] || return 0
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    local pids; pids=$(find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u)
    [ -n "$pids" ] || break
    for p in $pids; do kill -KILL "$p" 2>/dev/null || true; done
    sleep 0.3
  done
  find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  [ ! -d "$d" ] || log "WARNING: could not remove cgroup $d"
}
down() {
  if [ -x "$W" ] && is_mount "$MNT" && ns_exists "$NS"; then
    as_c podman rm -a -f -t 0 >/dev/null 2>&1 || true
  fi
  local d; for d in $(cg_dirs); do kill_cgroup "$d"; done
  local left; left=$(pgrep -u "$UID_" || true)
  if [ -n "$left" ]; then
    log "killing leftover processes of uid $UID_: $(echo $left)"; kill -KILL $left 2>/dev/null || true
    for _ in $(seq 50); do pgrep -u "$UID_" >/dev/null || break; sleep 0.1; done
  fi
  rm -f "$W"
  if is_mount "$MNT"; then umount "$MNT" || true; fi
  if is_mount "$NSDIR"; then umount "$NSDIR" || true; fi
  rm -rf "$NSDIR"
  if is_mount "$UTS"; then umount "$UTS" 2>/dev/null || true; fi
  rm -f "$UTS"
  ! ns_exists "$NS" || ip netns del "$NS"
  ! ip -n "$NET_NS" link show veth-c >/dev/null 2>&1 || ip -n "$NET_NS" link del veth-c
  if [ -f "$HOSTS_ENV" ]; then grep -v '^U7S_HOST_C_' "$HOSTS_ENV" > "$HOSTS_ENV.tmp" || true; mv "$HOSTS_ENV.tmp" "$HOSTS_ENV"; fi
  # the unpacked root stays (tests/.work is the cache; the user's files in it are reset on the next run)
  log "down: host C's namespaces, processes, wrapper and hosts.env lines removed ($TROOT kept)"
}
case ${1:-} in
  "") ;;
  --status) status; exit 0 ;;
  --down) down; exit 0 ;;
  -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
  *) die "unknown argument '$1' (try --help)" ;;
esac

# ------------------------------------------------------------------ 1. the Debian 13 root (cached tarball)
debian_mirror() { # the machine's first Debian mirror (the trixie archive lives beside bookworm's)
  [ -z "${U7S_DEBIAN_MIRROR:-}" ] || { echo "$U7S_DEBIAN_MIRROR"; return; }
  local m
  m=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk 'BEGIN{RS=""} /Components:[^\n]*main/ && /Suites:[^\n]*bookworm/ && match($0, /URIs:[ \t]*[^ \t\n]+/) {
      u = substr($0, RSTART, RLENGTH); sub(/URIs:[ \t]*/, "", u); if (u !~ /security/) { print u; exit } }')
  [ -n "$m" ] || m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
    awk '$1=="deb" && $0 !~ /security/ { sub(/\[[^]]*\] /, ""); print $2; exit }')
  echo "${m:-http://deb.debian.org/debian}"
}
BUILD=""
cleanup_build() { # unmount anything left under the build tree before deleting it
  [ -n "$BUILD" ] && [ -d "$BUILD" ] || return 0
  local m; for m in $(awk -v r="$BUILD" 'index($2, r "/") == 1 {print $2}' /proc/mounts | sort -r); do umount -l "$m" || true; done
  rm -rf --one-file-system "$BUILD"
}
trap cleanup_build EXIT
build_root() { # build_root TARBALL: debootstrap trixie with the engines, packed as a tar
  local tarball=$1 logf=$LOG_DIR/debootstrap-trixie.log r
  BUILD=$WORK/trixie-build.tmp; cleanup_build; mkdir -p "$BUILD" "$WORK/cache/debootstrap-trixie" "$LOG_DIR"
  r=$BUILD/root
  log "debootstrap $SUITE + $PACKAGES from $(debian_mirror) (log $logf)"
  # The policy-rc.d keeps docker.io's and dbus's maintainer scripts from starting daemons in the chroot.
  mkdir -p "$r/usr/sbin"; printf '#!/bin/sh\nexit 101\n' > "$r/usr/sbin/policy-rc.d"; chmod 755 "$r/usr/sbin/policy-rc.d"
  timeout 1500 debootstrap --variant=minbase --include="$PACKAGES" \
    --cache-dir="$WORK/cache/debootstrap-trixie" "$SUITE" "$r" "$(debian_mirror)" >"$logf" 2>&1 ||
    { tail -n 30 "$logf" >&2; die "debootstrap $SUITE failed (log: $logf)"; }
  [ -x "$r/usr/bin/podman" ] && [ -x "$r/usr/bin/pasta" ] || die "podman or pasta missing from the $SUITE root"
  rm -rf "$r"/var/cache/apt/archives/*.deb "$r"/var/lib/apt/lists/* "$r"/debootstrap
  : > "$r/etc/machine-id"
  tar --numeric-owner --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' -C "$r" -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
  cleanup_build; BUILD=""
}
root_fs() {
  local key tarball
  key=$(printf '%s\n' "$SUITE" "$(dpkg --print-architecture)" "$PACKAGES" "$(declare -f build_root)" | sha256sum | cut -c1-12)
  tarball=$IMAGES/u7s-trixie-root-$key.tar
  [ -f "$TROOT/.u7s-key" ] && [ "$(cat "$TROOT/.u7s-key")" = "$key" ] && return 0
  if [ ! -s "$tarball" ]; then
    mkdir -p "$IMAGES"; rm -f "$IMAGES"/u7s-trixie-root-*.tar   # older recipes
    build_root "$tarball"
  fi
  # a new recipe: nothing may still run from (or be mounted under) the old root
  if [ -d "$TROOT" ]; then
    down
    local m; for m in $(awk -v r="$TROOT" 'index($2, r "/") == 1 || $2 == r {print $2}' /proc/mounts | sort -r); do umount -l "$m" || true; done
    rm -rf --one-file-system "$TROOT"
  fi
  log "unpacking $tarball into $TROOT"
  mkdir -p "$TROOT.tmp"; tar --numeric-owner -C "$TROOT.tmp" -xf "$tarball"; mv "$TROOT.tmp" "$TROOT"
  echo "$key" > "$TROOT/.u7s-key"
}

# ------------------------------------------------------------------ 2. network and hostname
network() {
  ns_exists "$NET_NS" || die "network namespace $NET_NS missing: run tests/setup-hosts.sh first"
  ns_exists "$NS" || ip netns add "$NS"
  ip -n "$NS" link set lo up
  # both ends are created inside their namespaces: nothing appears in the machine's own
  ip -n "$NS" link show eth0 >/dev/null 2>&1 || ip -n "$NET_NS" link add veth-c type veth peer name eth0 netns "$NS"
  ip -n "$NET_NS" link set veth-c master "$BRIDGE" up
  ip -n "$NS" -4 addr show dev eth0 | grep -q " $IP/24 " || ip -n "$NS" addr add "$IP/24" dev eth0
  ip -n "$NS" link set eth0 up
  ip -n "$NS" route replace default via "$GATEWAY" dev eth0
  mkdir -p "$RUN_DIR"
  if ! is_mount "$UTS"; then touch "$UTS"; unshare --uts="$UTS" hostname "$HOSTNAME_"; fi
}

# ------------------------------------------------------------------ 3. the user and podman's configuration, inside the root
user_in_root() {
  grep -q "^$U:" "$TROOT/etc/group" || in_root groupadd -g "$GID_" "$U"
  grep -q "^$U:" "$TROOT/etc/passwd" || in_root useradd -m -u "$UID_" -g "$GID_" -s /bin/bash "$U"
  local f; for f in subuid subgid; do
    grep -q "^$U:" "$TROOT/etc/$f" 2>/dev/null || echo "$U:$SUBID_START:65536" >> "$TROOT/etc/$f"
  done
  local cfg=$TROOT$HOME_/.config/containers
  install -d -o "$UID_" -g "$GID_" "$TROOT$HOME_/.config" "$cfg"
  # As tests/setup-engines.sh gives the Debian 12 user (see why there): overlay, runc (crun has no
  # cgroup v1 hybrid support), cgroupfs and file events (no systemd or journald here). The network
  # is left at Podman 5's default, pasta: that is what this host is for.
  printf '[storage]\ndriver = "overlay"\n' > "$cfg/storage.conf"
  printf '[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n' > "$cfg/containers.conf"
  chown "$UID_:$GID_" "$cfg/storage.conf" "$cfg/containers.conf"
  local d; for d in $(cg_dirs); do mkdir -p "$d"; chown -R "$UID_:$GID_" "$d"; done
}

# ------------------------------------------------------------------ 4. the mount namespace: the Debian 13 root as /
mount_ns() {
  local key; key=$(declare -f mount_ns | sha256sum | cut -c1-12)
  if is_mount "$MNT" && nsenter --mount="$MNT" test -f /.u7s-key 2>/dev/null && [ "$(cat "$NSDIR/key" 2>/dev/null)" = "$key" ]; then return 0; fi
  # an older namespace (another recipe of this function): nothing of host C may keep running in it
  if is_mount "$MNT"; then down; network; user_in_root; fi
  mkdir -p "$NSDIR"
  # the handle must sit on a private mount (a shared one would let the namespace pin itself)
  if ! is_mount "$NSDIR"; then mount --bind "$NSDIR" "$NSDIR"; mount --make-private "$NSDIR"; fi
  touch "$MNT"
  # pivot_root, not chroot: nsenter --mount then lands in the new root (setns puts a process at the
  # namespace's root mount). /sys is bound recursively for the cgroup mounts (runc needs them),
  # /dev for /dev/net/tun (pasta) and /dev/fuse; the machine's /tmp as /tmp, since hosts A and B
  # share it too (the harness copies dist/u7s there for the test users).
  unshare --mount="$MNT" --propagation private sh -euc '
    r=$1
    mount --bind "$r" "$r"
    mount -t proc proc "$r/proc"
    mount --rbind /sys "$r/sys"
    mount --rbind /dev "$r/dev"
    mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs "$r/run"
    mount --bind /tmp "$r/tmp"
    mkdir -p "$r/.oldroot"; cd "$r"; pivot_root . .oldroot; cd /
    umount -l /.oldroot; rmdir /.oldroot
    mount --make-rshared /   # rootless engines want shared propagation for their bind mounts
  ' sh "$TROOT"
  nsenter --mount="$MNT" install -d -o "$UID_" -g "$GID_" -m 0700 "$XDG_"
  echo "$key" > "$NSDIR/key"
}

# ------------------------------------------------------------------ 5. the wrapper
wrapper() {
  local dirs tmp; dirs=$(cg_dirs | tr '\n' ' '); tmp=$(mktemp)
  cat > "$tmp" <<EOW
#!/bin/sh
# $W CMD [ARG...]: run CMD on test host C (Debian 13): as $U, in the network namespace $NS, the
# UTS namespace of host $HOSTNAME_ and the mount namespace whose root is $TROOT, inside $U's
# delegated cgroups, with a clean environment for its rootless Podman (written by
# tests/setup-host-trixie.sh). Pass more variables with: $W env K=V CMD ...
[ "\$(id -u)" = 0 ] || { echo "\$0: run me as root" >&2; exit 1; }
for d in $dirs; do echo \$\$ > "\$d/cgroup.procs" 2>/dev/null || true; done
# nsenter, not \`ip netns exec\`: that remounts /sys without the cgroup mounts and runc fails.
exec nsenter --net=/run/netns/$NS --uts=$UTS --mount=$MNT -- runuser -u $U -- \\
  env -i HOME=$HOME_ USER=$U LOGNAME=$U SHELL=/bin/bash LANG=C.UTF-8 PATH=$SAFE_PATH XDG_RUNTIME_DIR=$XDG_ \\
  sh -c 'cd "\$0" 2>/dev/null || cd; exec "\$@"' "\$(pwd)" "\$@"
EOW
  install -m 0755 "$tmp" "$W"; rm -f "$tmp"
  local v; v=$(as_c podman info --format '{{.Host.NetworkBackend}} {{.Host.RootlessNetworkCmd}} {{.Store.GraphDriverName}} {{.Host.OCIRuntime.Name}}') ||
    die "podman info fails on host C"
  [ "$v" = "netavark pasta overlay runc" ] || die "host C's podman: network backend, rootless network, storage, runtime are '$v', expected 'netavark pasta overlay runc'"
}

# ------------------------------------------------------------------ 6. images
envval() { sed -n "s/^$1=//p" "$ENGINES_ENV" | tail -n 1; }
TEST_IMAGE="" CLUSTER_IMAGE=""
load_image() { # load_image REF ARCHIVE: podman load the archive (id in ARCHIVE.id) unless REF has that id
  local ref=$1 archive=$2 want have
  [ -s "$archive" ] && [ -s "$archive.id" ] || die "$archive (or its .id) missing: run tests/setup-engines.sh first"
  want=$(cat "$archive.id"); want=${want#sha256:}
  have=$(as_c podman image inspect --format '{{.Id}}' "$ref" 2>/dev/null || true)
  [ "${have#sha256:}" = "$want" ] && return 0
  log "host C (podman): loading $ref"
  as_c podman load -q < "$archive" >/dev/null || die "host C: podman load of $archive failed"
  have=$(as_c podman image inspect --format '{{.Id}}' "$ref")
  [ "${have#sha256:}" = "$want" ] || die "host C: $ref has id $have after load, expected $want"
  as_c podman image prune -f >/dev/null 2>&1 || true
}
images() {
  [ -f "$ENGINES_ENV" ] || die "$ENGINES_ENV missing: run tests/setup-engines.sh first"
  TEST_IMAGE=$(envval U7S_TEST_IMAGE); CLUSTER_IMAGE=$(envval U7S_TEST_CLUSTER_IMAGE)
  load_image "$TEST_IMAGE" "$(envval U7S_TEST_IMAGE_ARCHIVE)"
  [ -z "$CLUSTER_IMAGE" ] || load_image "$CLUSTER_IMAGE" "$(envval U7S_TEST_CLUSTER_IMAGE_ARCHIVE)"
}

# ------------------------------------------------------------------ 7. facts
write_env() {
  [ -f "$HOSTS_ENV" ] || die "$HOSTS_ENV missing: run tests/setup-hosts.sh first"
  local podman pasta
  podman=$(as_c podman version --format '{{.Client.Version}}')
  # (pasta 2025-05-03's --version prints nothing here, and podman info's pasta version is empty)
  pasta=$(in_root dpkg-query -W -f '${Version}' passt)
  { grep -v '^U7S_HOST_C_' "$HOSTS_ENV"
    printf '%s\n' "U7S_HOST_C_NETNS=$NS" "U7S_HOST_C_HOSTNAME=$HOSTNAME_" "U7S_HOST_C_IP=$IP" "U7S_HOST_C_INTERFACE=eth0" \
      "U7S_HOST_C_USER=$U" "U7S_HOST_C_UID=$UID_" "U7S_HOST_C_HOME=$HOME_" "U7S_HOST_C_XDG_RUNTIME_DIR=$XDG_" \
      "U7S_HOST_C_EXEC=$W" "U7S_HOST_C_ENGINE=podman" "U7S_HOST_C_DOCKER_SOCK=$XDG_/docker.sock" \
      "U7S_HOST_C_OS=debian-$(cat "$TROOT/etc/debian_version")" "U7S_HOST_C_PODMAN_VERSION=$podman" \
      "U7S_HOST_C_NETWORK=pasta" "U7S_HOST_C_PASTA_VERSION=$pasta" "U7S_HOST_C_ROOT=$TROOT"
  } > "$HOSTS_ENV.tmp"
  mv "$HOSTS_ENV.tmp" "$HOSTS_ENV"
}

phase root root_fs
phase network network
phase user+cgroups user_in_root
phase mount-namespace mount_ns
phase wrapper+podman wrapper
phase images images
phase env-file write_env
ms=$(ms_since "$T0"); log "$(printf 'total %d.%01ds; host C: Debian %s, podman %s' $((ms / 1000)) $((ms % 1000 / 100)) "$(cat "$TROOT/etc/debian_version")" "$(as_c podman version --format '{{.Client.Version}}')")"
