#!/usr/bin/env bash
# tests/setup-host-trixie.sh: test hosts C and D, running Debian 13 (trixie)'s rootless engines (as root).
#
#   bash tests/setup-host-trixie.sh            # build/unpack the root, namespaces, users, engines, images (idempotent)
#   bash tests/setup-host-trixie.sh --status
#   bash tests/setup-host-trixie.sh --down     # remove the namespaces, wrappers, engines, cgroups and hosts.env's C/D lines
#
# Hosts C and D are host A/B's pattern (tests/setup-hosts.sh) with a different operating system under
# the engine: a debootstrapped Debian 13 root (tests/.work/trixie-root, cached as a tarball in
# tests/.work/images) becomes the root of a mount namespace of each host (pivot_root), so the engines,
# pasta, slirp4netns, RootlessKit, runc and their libraries are Debian 13's; this machine's Debian 12
# packages are never touched. Each host: network namespace u7s-host-X (10.213.0.3 for C, .4 for D on
# setup-hosts.sh's bridge), UTS namespace (hostname host-X), user u7shostX (exists only inside the
# root) with subuid/subgid and delegated cgroups; /usr/local/bin/u7s-host-X-exec CMD... runs CMD there.
# C: Podman 5.4 (no daemon) with its default rootless network, pasta. D: rootless Docker 26.1 with
# RootlessKit 2.0 on slirp4netns (U7S_HOST_D_NET=pasta: on pasta; U7S_HOST_D=0: no host D).
# The machine's /tmp is the hosts' /tmp (as hosts A and B share it: the harness puts dist/u7s there).
# Needs tests/setup-hosts.sh first (the bridge namespace) and tests/setup-engines.sh (images).
# Adds U7S_HOST_C_*, U7S_HOST_D_* to tests/.work/hosts.env (read by tests/e2e/harness.ts). Knob: U7S_DEBIAN_MIRROR.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib-hosts.sh
LOG_TAG=setup-host-trixie
. "$HERE/lib-hosts.sh"
ROOT=$(cd "$HERE/.." && pwd)
WORK=$HERE/.work
IMAGES=$WORK/images
ENGINES_ENV=$WORK/engines.env
HOSTS_ENV=$WORK/hosts.env
TROOT=$WORK/trixie-root         # the unpacked Debian 13 root (hosts C and D's /)
RUN_DIR=/run/u7s-test-hosts     # shared with setup-hosts.sh (its --down removes it)
LOG_DIR=/var/log/u7s-test-hosts
SAFE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
SUITE=trixie
PACKAGES=podman,passt,uidmap,runc,conmon,netavark,aardvark-dns,nftables,catatonit,slirp4netns,iptables,iproute2,procps,curl,ca-certificates,docker.io,docker-cli,rootlesskit
NET_NS=u7s-hosts-net BRIDGE=br0 PREFIX=10.213.0
GATEWAY=$PREFIX.254
HOSTS=(c); [ "${U7S_HOST_D:-1}" = 0 ] || HOSTS+=(d)
declare -A ENGINE=([c]=podman [d]=docker) NUM=([c]=3 [d]=4)
D_NET=${U7S_HOST_D_NET:-slirp4netns}
case $D_NET in slirp4netns|pasta) ;; *) echo "[setup-host-trixie] ERROR: U7S_HOST_D_NET=$D_NET: want slirp4netns or pasta" >&2; exit 2 ;; esac
DOCKERD_ROOTLESS=/usr/share/docker.io/contrib/dockerd-rootless.sh   # inside the root
select_host() { # select_host c|d: the per-host names below
  H=$1; local n=${NUM[$1]}
  NS=u7s-host-$H HOSTNAME_=host-$H IP=$PREFIX.$n U=u7shost$H
  UID_=$((2210 + n)) GID_=$((2210 + n))        # fixed, above the machine's own users: the user lives only in the root
  SUBID_START=$((2130000000 + (n - 3) * 65536))  # far from the machine's /etc/subuid ranges (100000 + 65536 per user)
  HOME_=/home/$U XDG_=/run/user/$UID_
  W=/usr/local/bin/u7s-host-$H-exec
  NSDIR=$RUN_DIR/host-$H MNT=$RUN_DIR/host-$H/mnt UTS=$RUN_DIR/uts-$H
}

[ "$(id -u)" = 0 ] || die "run as root: it creates namespaces and unpacks a root file system"
export PATH=$SAFE_PATH:$PATH
cg_dirs() { cgroup_dirs "$U"; } # the delegated cgroup directories (tests/lib-hosts.sh), as tests/setup-hosts.sh makes them
as_h() { timeout 600 "$W" "$@"; }
in_root() { chroot "$TROOT" /usr/bin/env -i PATH=$SAFE_PATH LANG=C.UTF-8 "$@"; } # admin steps, before the namespace

# ------------------------------------------------------------------ status / down
status() {
  local h
  if [ -f "$TROOT/.u7s-key" ]; then echo "root: $TROOT (recipe $(cat "$TROOT/.u7s-key"), $(cat "$TROOT/etc/debian_version"))"; else echo "root: absent"; fi
  for h in c d; do select_host "$h"; echo "host $h:"; status_host; done
}
status_host() {
  if ns_exists "$NS"; then echo "netns $NS: $(ip -n "$NS" -4 -br addr show eth0 2>/dev/null | awk '{print $3}')"; else echo "netns $NS: absent"; fi
  if is_mount "$MNT"; then echo "mount namespace: $MNT"; else echo "mount namespace: absent"; fi
  [ -x "$W" ] && is_mount "$MNT" && echo "${ENGINE[$H]}: $(as_h "${ENGINE[$H]}" version --format '{{.Server.Version}}' 2>/dev/null), $(as_h "${ENGINE[$H]}" ps -q 2>/dev/null | wc -l) containers running"
  return 0
}
down() {
  local h; for h in c d; do select_host "$h"; down_host; done
  # the unpacked root stays (tests/.work is the cache; the users' files in it are reset on the next run)
  log "down: hosts C and D's namespaces, processes, wrappers and hosts.env lines removed ($TROOT kept)"
}
down_host() { # down_host: the selected host's engine, processes, namespaces, wrapper, hosts.env lines
  if [ -x "$W" ] && is_mount "$MNT" && ns_exists "$NS"; then
    as_h "${ENGINE[$H]}" rm -f $(as_h "${ENGINE[$H]}" ps -aq 2>/dev/null) >/dev/null 2>&1 || true
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
  ! ip -n "$NET_NS" link show "veth-$H" >/dev/null 2>&1 || ip -n "$NET_NS" link del "veth-$H"
  if [ -f "$HOSTS_ENV" ]; then grep -v "^U7S_HOST_${H^^}_" "$HOSTS_ENV" > "$HOSTS_ENV.tmp" || true; mv "$HOSTS_ENV.tmp" "$HOSTS_ENV"; fi
  rm -f "$RUN_DIR/dockerd-$H-launcher.pid"
}
case ${1:-} in
  "") ;;
  --status) status; exit 0 ;;
  --down) down; exit 0 ;;
  -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
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
  host_link "$NS" "veth-$H" "$IP"
  mkdir -p "$RUN_DIR"
  host_uts "$UTS" "$HOSTNAME_"
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
  # Podman (host C) as tests/setup-engines.sh gives the Debian 12 user (see why there): overlay, runc
  # (crun has no cgroup v1 hybrid support), cgroupfs and file events (no systemd or journald here).
  # The network is left at Podman 5's default, pasta: that is what host C is for.
  printf '[storage]\ndriver = "overlay"\n' > "$cfg/storage.conf"
  printf '[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n' > "$cfg/containers.conf"
  chown "$UID_:$GID_" "$cfg/storage.conf" "$cfg/containers.conf"
  local d; for d in $(cg_dirs); do mkdir -p "$d"; chown -R "$UID_:$GID_" "$d"; done
}

# ------------------------------------------------------------------ 4. the mount namespace: the Debian 13 root as /
mount_ns() {
  local key; key=$(declare -f mount_ns | sha256sum | cut -c1-12)
  if is_mount "$MNT" && nsenter --mount="$MNT" test -f /.u7s-key 2>/dev/null && [ "$(cat "$NSDIR/key" 2>/dev/null)" = "$key" ]; then return 0; fi
  # an older namespace (another recipe of this function): nothing of the host may keep running in it
  if is_mount "$MNT"; then down_host; network; user_in_root; fi
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
# $W CMD [ARG...]: run CMD on test host ${H^^} (Debian 13): as $U, in the network namespace $NS, the
# UTS namespace of host $HOSTNAME_ and the mount namespace whose root is $TROOT, inside $U's
# delegated cgroups, with a clean environment for its rootless ${ENGINE[$H]} (written by
# tests/setup-host-trixie.sh). Pass more variables with: $W env K=V CMD ...
[ "\$(id -u)" = 0 ] || { echo "\$0: run me as root" >&2; exit 1; }
for d in $dirs; do echo \$\$ > "\$d/cgroup.procs" 2>/dev/null || true; done
# nsenter, not \`ip netns exec\`: that remounts /sys without the cgroup mounts and runc fails.
exec nsenter --net=/run/netns/$NS --uts=$UTS --mount=$MNT -- runuser -u $U -- \\
  env -i HOME=$HOME_ USER=$U LOGNAME=$U SHELL=/bin/bash LANG=C.UTF-8 PATH=$SAFE_PATH XDG_RUNTIME_DIR=$XDG_ DOCKER_HOST=unix://$XDG_/docker.sock \\
  sh -c 'cd "\$0" 2>/dev/null || cd; exec "\$@"' "\$(pwd)" "\$@"
EOW
  install -m 0755 "$tmp" "$W"; rm -f "$tmp"
}
podman_check() { # host C: Debian 13's podman answers, with the settings the host is for
  local v; v=$(as_h podman info --format '{{.Host.NetworkBackend}} {{.Host.RootlessNetworkCmd}} {{.Store.GraphDriverName}} {{.Host.OCIRuntime.Name}}') ||
    die "podman info fails on host $H"
  [ "$v" = "netavark pasta overlay runc" ] || die "host $H's podman: network backend, rootless network, storage, runtime are '$v', expected 'netavark pasta overlay runc'"
}

# ------------------------------------------------------------------ 6. host D's rootless dockerd (Debian 13's script, RootlessKit 2)
docker_up() { as_h docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }
start_docker() {
  local logf=$LOG_DIR/dockerd-$H.log want=$D_NET have
  if docker_up; then
    have=$(rootlesskit_net)
    [ "$have" = "$want" ] && return 0
    log "host $H: rootless dockerd runs on ${have:-an unknown network}, want $want: restarting it"
    local d; for d in $(cg_dirs); do kill_cgroup "$d"; done
    user_in_root; nsenter --mount="$MNT" rm -f "$XDG_/docker.pid" "$XDG_/docker.sock"
  fi
  mkdir -p "$LOG_DIR"; echo "--- $(date -u +%FT%TZ) starting on $want" >> "$logf"
  # As tests/setup-hosts.sh starts hosts A's: setsid, every fd to the log, cd / (the daemon outlives
  # this script). pasta needs RootlessKit's implicit port driver (Docker's rootless documentation).
  local extra=(); [ "$want" != pasta ] || extra=(DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER=implicit)
  (cd / && exec setsid "$W" env DOCKERD_ROOTLESS_ROOTLESSKIT_NET="$want" "${extra[@]}" "$DOCKERD_ROOTLESS" >>"$logf" 2>&1 </dev/null) &
  local pid=$! deadline=$(( $(date +%s) + 90 )); echo "$pid" > "$RUN_DIR/dockerd-$H-launcher.pid"
  until docker_up; do
    kill -0 "$pid" 2>/dev/null || { tail -n 30 "$logf" >&2; die "host $H: rootless dockerd exited (log: $logf)"; }
    [ "$(date +%s)" -lt "$deadline" ] || { tail -n 30 "$logf" >&2; die "host $H: rootless dockerd not up after 90s (log: $logf)"; }
    sleep 0.3
  done
  case $(as_h docker info --format '{{json .SecurityOptions}}') in
    *rootless*) ;; *) die "host $H: the daemon is not rootless" ;;
  esac
  have=$(rootlesskit_net); [ "$have" = "$want" ] || die "host $H: RootlessKit's network is '$have', expected $want"
}
rootlesskit_net() { # RootlessKit's network driver, as `docker version` lists it (Docker >= 23)
  as_h docker version --format '{{range .Server.Components}}{{if eq .Name "rootlesskit"}}{{.Details.NetworkDriver}}{{end}}{{end}}' 2>/dev/null
}
engine() { if [ "${ENGINE[$H]}" = podman ]; then podman_check; else start_docker; fi; }

# ------------------------------------------------------------------ 7. images
envval() { sed -n "s/^$1=//p" "$ENGINES_ENV" | tail -n 1; }
TEST_IMAGE="" CLUSTER_IMAGE=""
load_image() { # load_image REF ARCHIVE: load the archive (id in ARCHIVE.id) into the host's engine unless REF has that id
  local ref=$1 archive=$2 want have e=${ENGINE[$H]}
  [ -s "$archive" ] && [ -s "$archive.id" ] || die "$archive (or its .id) missing: run tests/setup-engines.sh first"
  want=$(cat "$archive.id"); want=${want#sha256:}
  have=$(as_h "$e" image inspect --format '{{.Id}}' "$ref" 2>/dev/null || true)
  [ "${have#sha256:}" = "$want" ] && return 0
  log "host $H ($e): loading $ref"
  as_h "$e" load -q < "$archive" >/dev/null || die "host $H: $e load of $archive failed"
  have=$(as_h "$e" image inspect --format '{{.Id}}' "$ref")
  [ "${have#sha256:}" = "$want" ] || die "host $H: $ref has id $have after load, expected $want"
  as_h "$e" image prune -f >/dev/null 2>&1 || true
}
images() {
  [ -f "$ENGINES_ENV" ] || die "$ENGINES_ENV missing: run tests/setup-engines.sh first"
  TEST_IMAGE=$(envval U7S_TEST_IMAGE); CLUSTER_IMAGE=$(envval U7S_TEST_CLUSTER_IMAGE)
  load_image "$TEST_IMAGE" "$(envval U7S_TEST_IMAGE_ARCHIVE)"
  [ -z "$CLUSTER_IMAGE" ] || load_image "$CLUSTER_IMAGE" "$(envval U7S_TEST_CLUSTER_IMAGE_ARCHIVE)"
}

# ------------------------------------------------------------------ 8. facts
write_env() {
  [ -f "$HOSTS_ENV" ] || die "$HOSTS_ENV missing: run tests/setup-hosts.sh first"
  local P=U7S_HOST_${H^^}_ version net tool
  if [ "${ENGINE[$H]}" = podman ]; then
    version=$(as_h podman version --format '{{.Client.Version}}'); net=pasta
    # (pasta 2025-05-03's --version prints nothing here, and podman info's pasta version is empty)
    tool=$(in_root dpkg-query -W -f '${Version}' passt)
  else
    version=$(as_h docker version --format '{{.Server.Version}}'); net=$(rootlesskit_net)
    tool=$(in_root dpkg-query -W -f '${Version}' rootlesskit)
  fi
  { grep -v "^$P" "$HOSTS_ENV"
    printf "$P%s\n" "NETNS=$NS" "HOSTNAME=$HOSTNAME_" "IP=$IP" "INTERFACE=eth0" "USER=$U" "UID=$UID_" "HOME=$HOME_" \
      "XDG_RUNTIME_DIR=$XDG_" "EXEC=$W" "ENGINE=${ENGINE[$H]}" "DOCKER_SOCK=$XDG_/docker.sock" \
      "OS=debian-$(cat "$TROOT/etc/debian_version")" "ENGINE_VERSION=$version" "NETWORK=$net" \
      "$([ "${ENGINE[$H]}" = podman ] && echo PASTA_VERSION || echo ROOTLESSKIT_VERSION)=$tool" "ROOT=$TROOT"
  } > "$HOSTS_ENV.tmp"
  mv "$HOSTS_ENV.tmp" "$HOSTS_ENV"
}

per_host() { local f; for f in network user_in_root mount_ns wrapper engine images write_env; do "$f"; done; }
phase root root_fs
for h in "${HOSTS[@]}"; do
  select_host "$h"; s=$(date +%s%N); per_host
  ms=$(ms_since "$s"); log "$(printf 'phase host-%s (%s) %14d.%01ds' "$h" "${ENGINE[$h]}" $((ms / 1000)) $((ms % 1000 / 100)))"
done
if [ "${U7S_HOST_D:-1}" = 0 ]; then select_host d; down_host; fi   # a host D from an earlier run goes
ms=$(ms_since "$T0"); log "$(printf 'total %d.%01ds; Debian %s: hosts %s' $((ms / 1000)) $((ms % 1000 / 100)) "$(cat "$TROOT/etc/debian_version")" "${HOSTS[*]}")"
