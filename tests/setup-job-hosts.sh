#!/usr/bin/env bash
# tests/setup-job-hosts.sh: test hosts E and F, two nodes of a batch job's allocation (issue 18), as root.
#
#   bash tests/setup-job-hosts.sh            # create (idempotent, fast on a re-run)
#   bash tests/setup-job-hosts.sh --status
#   bash tests/setup-job-hosts.sh --down     # remove the namespaces, processes, wrappers, user, cgroups, hosts.env lines
#
# What a job step sees on an HPC node: ONE user (u7sjob) on both hosts with ONE home (/home/u7sjob, the
# machine's: the cluster file system every node mounts), node-local scratch of each host's own, no
# systemd user session (no XDG_RUNTIME_DIR, nothing in /run/user) and no container engine running.
# Each host: network namespace u7s-host-X on tests/setup-hosts.sh's bridge (10.213.0.5 for E, .6 for F),
# UTS namespace (hostname host-X), a persistent mount namespace (kept by a bind mount like the UTS one)
# with a private tmpfs /tmp and an empty /run/user, and delegated cgroup directories of its own
# (u7s-u7sjob-host-X: the job's cgroup, not a login session's). /usr/local/bin/u7s-host-X-exec CMD...
# runs CMD there as u7sjob with a job step's environment (no XDG_RUNTIME_DIR, no DOCKER_HOST, cwd the
# home); its pid becomes CMD's (setpriv, no runuser in between), so a SIGTERM to it is Slurm's SIGTERM.
# Image archives u7sjob cannot read are copied to /var/lib/u7s-job-hosts/images (a private engine
# starts empty: the job loads them); /var/lib/u7s-job-hosts/bin is where tests put dist/u7s (the
# hosts' /tmp is their own). Needs tests/setup-hosts.sh's bridge and tests/setup-engines.sh's images.
# Adds U7S_HOST_E_*, U7S_HOST_F_* and U7S_JOB_* to tests/.work/hosts.env.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib-hosts.sh
LOG_TAG=setup-job-hosts
. "$HERE/lib-hosts.sh"
WORK=$HERE/.work
ENGINES_ENV=$WORK/engines.env
HOSTS_ENV=$WORK/hosts.env
RUN_DIR=/run/u7s-test-hosts     # shared with setup-hosts.sh (its --down removes it)
JOB_DIR=/var/lib/u7s-job-hosts  # bin/ and images/, readable by the job user
SAFE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
NET_NS=u7s-hosts-net BRIDGE=br0 PREFIX=10.213.0
GATEWAY=$PREFIX.254
JOB_USER=u7sjob
HOSTS=(e f)
declare -A NUM=([e]=5 [f]=6)
select_host() { # select_host e|f: the per-host names below
  H=$1; NS=u7s-host-$H HOSTNAME_=host-$H IP=$PREFIX.${NUM[$1]}
  W=/usr/local/bin/u7s-host-$H-exec CG=$JOB_USER-host-$H
  NSDIR=$RUN_DIR/host-$H MNT=$RUN_DIR/host-$H/mnt UTS=$RUN_DIR/uts-$H
}
user_env() { # the job user's ids and home (user must exist)
  UID_=$(id -u "$JOB_USER"); GID_=$(id -g "$JOB_USER"); HOME_=$(getent passwd "$JOB_USER" | cut -d: -f6)
}

[ "$(id -u)" = 0 ] || die "run as root: it creates namespaces and a user"
export PATH=$SAFE_PATH:$PATH

# ------------------------------------------------------------------ status / down
status() {
  id "$JOB_USER" >/dev/null 2>&1 && { user_env; echo "user $JOB_USER: uid $UID_, home $HOME_ (shared by the hosts)"; } || echo "user $JOB_USER: absent"
  local h; for h in "${HOSTS[@]}"; do
    select_host "$h"; echo "host $h:"
    if ns_exists "$NS"; then echo "  netns $NS: $(ip -n "$NS" -4 -br addr show eth0 2>/dev/null | awk '{print $3}')"; else echo "  netns $NS: absent"; fi
    if is_mount "$MNT"; then
      echo "  mount namespace: $MNT; /tmp $(nsenter --mount="$MNT" findmnt -n -o FSTYPE /tmp), /run/user: $(nsenter --mount="$MNT" ls -A /run/user | wc -l) entries"
    else echo "  mount namespace: absent"; fi
    local n=0 d; for d in $(cgroup_dirs "$CG"); do [ -f "$d/cgroup.procs" ] && n=$(find "$d" -name cgroup.procs -exec cat {} + | sort -u | wc -l); done
    echo "  processes in its cgroup: $n"
  done
  [ -f "$HOSTS_ENV" ] && grep -q '^U7S_JOB_USER=' "$HOSTS_ENV" && echo "env file: $HOSTS_ENV (U7S_HOST_E_*, U7S_HOST_F_*, U7S_JOB_*)"
  return 0
}
down_host() { # down_host: the selected host's processes, namespaces, wrapper
  local d; for d in $(cgroup_dirs "$CG"); do kill_cgroup "$d"; done
  rm -f "$W"
  if is_mount "$MNT"; then umount "$MNT" || true; fi
  if is_mount "$NSDIR"; then umount "$NSDIR" || true; fi
  rm -rf "$NSDIR"
  if is_mount "$UTS"; then umount "$UTS" 2>/dev/null || true; fi
  rm -f "$UTS"
  ! ns_exists "$NS" || ip netns del "$NS"
  ! ns_exists "$NET_NS" || ! ip -n "$NET_NS" link show "veth-$H" >/dev/null 2>&1 || ip -n "$NET_NS" link del "veth-$H"
}
down() {
  local h; for h in "${HOSTS[@]}"; do select_host "$h"; down_host; done
  if id "$JOB_USER" >/dev/null 2>&1; then
    user_env
    local left; left=$(pgrep -u "$UID_" || true)
    if [ -n "$left" ]; then
      log "killing leftover processes of $JOB_USER: $(echo $left)"; kill -KILL $left 2>/dev/null || true
      for _ in $(seq 50); do pgrep -u "$UID_" >/dev/null || break; sleep 0.1; done
    fi
    userdel -r "$JOB_USER" >/dev/null 2>&1 || userdel "$JOB_USER" || log "WARNING: userdel $JOB_USER failed"
    rm -rf --one-file-system "$HOME_"
  fi
  local f; for f in subuid subgid; do [ -f /etc/$f ] && sed -i "/^$JOB_USER:/d" /etc/$f; done
  rm -rf "$JOB_DIR"
  if [ -f "$HOSTS_ENV" ]; then grep -Ev '^U7S_(HOST_[EF]|JOB)_' "$HOSTS_ENV" > "$HOSTS_ENV.tmp" || true; mv "$HOSTS_ENV.tmp" "$HOSTS_ENV"; fi
  log "down: hosts E and F's namespaces, processes, wrappers, user $JOB_USER, $JOB_DIR and hosts.env lines removed"
}
case ${1:-} in
  "") ;;
  --status) status; exit 0 ;;
  --down) down; exit 0 ;;
  -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
  *) die "unknown argument '$1' (try --help)" ;;
esac

# ------------------------------------------------------------------ 1. prerequisites, the user and its shared home
prereqs() {
  [ -f "$ENGINES_ENV" ] || die "$ENGINES_ENV missing: run tests/setup-engines.sh first"
  [ -f "$HOSTS_ENV" ] && ns_exists "$NET_NS" || die "the hosts' bridge ($NET_NS) or $HOSTS_ENV is missing: run tests/setup-hosts.sh first"
  local b; for b in ip nsenter unshare setpriv findmnt; do command -v "$b" >/dev/null || die "$b missing"; done
  mkdir -p "$RUN_DIR"
}
job_user() {
  id "$JOB_USER" >/dev/null 2>&1 || { useradd -m -s /bin/bash "$JOB_USER"; log "created user $JOB_USER"; }
  add_subids "$JOB_USER"
  user_env
  # What a site's user would have set up once in the home (tests/setup-engines.sh says why: runc, cgroupfs, file events).
  podman_config
}

# ------------------------------------------------------------------ 2. per host: network, hostname, mount namespace, cgroups, wrapper
mount_ns() {
  # The recipe's hash: an older namespace (another version of this function) is replaced.
  local key; key=$(declare -f mount_ns | sha256sum | cut -c1-12)
  if is_mount "$MNT" && [ "$(cat "$NSDIR/key" 2>/dev/null)" = "$key" ]; then return 0; fi
  if is_mount "$MNT"; then local d; for d in $(cgroup_dirs "$CG"); do kill_cgroup "$d"; done; umount "$MNT"; fi
  mkdir -p "$NSDIR"
  # the handle must sit on a private mount (a shared one would let the namespace pin itself)
  if ! is_mount "$NSDIR"; then mount --bind "$NSDIR" "$NSDIR"; mount --make-private "$NSDIR"; fi
  touch "$MNT"
  # The machine's tree, except: /tmp is the node's own scratch (a tmpfs: node-local, gone with the
  # host) and /run/user is empty (no login session: no XDG_RUNTIME_DIR, no engine socket of anyone's).
  # Shared propagation afterwards, inside this namespace only: rootless engines want it for their mounts.
  unshare --mount="$MNT" --propagation private sh -euc '
    mount -t tmpfs -o mode=1777,nodev tmpfs /tmp
    mount -t tmpfs -o mode=0755,nosuid,nodev,noexec tmpfs /run/user
    mount --make-rshared /
  '
  echo "$key" > "$NSDIR/key"
}
cgroups() {
  local d; for d in $(cgroup_dirs "$CG"); do mkdir -p "$d"; chown -R "$UID_:$GID_" "$d"; done
}
wrapper() {
  local dirs tmp; dirs=$(cgroup_dirs "$CG" | tr '\n' ' '); tmp=$(mktemp)
  cat > "$tmp" <<EOW
#!/bin/sh
# $W CMD [ARG...]: run CMD on job test host ${H^^} as a batch job step would: as $JOB_USER, in the network
# namespace $NS, the UTS namespace of $HOSTNAME_, the mount namespace with the host's own /tmp and an
# empty /run/user, inside the delegated cgroups u7s-$CG; no XDG_RUNTIME_DIR, no DOCKER_HOST, cwd the
# shared home (written by tests/setup-job-hosts.sh). Pass more variables with: $W env K=V CMD ...
# setpriv, not runuser: runuser forks and SIGKILLs its child 2 s after passing on a SIGTERM (util-linux
# su-common.c); through exec only, this wrapper's pid is CMD's and a SIGTERM to it reaches CMD.
[ "\$(id -u)" = 0 ] || { echo "\$0: run me as root" >&2; exit 1; }
for d in $dirs; do echo \$\$ > "\$d/cgroup.procs" 2>/dev/null || true; done
# nsenter, not \`ip netns exec\`: that remounts /sys without the cgroup mounts and runc fails.
exec nsenter --net=/run/netns/$NS --uts=$UTS --mount=$MNT -- setpriv --reuid=$UID_ --regid=$GID_ --init-groups -- \\
  env -i HOME=$HOME_ USER=$JOB_USER LOGNAME=$JOB_USER SHELL=/bin/bash LANG=C.UTF-8 PATH=$SAFE_PATH \\
  sh -c 'cd "\$HOME" && exec "\$@"' sh "\$@"
EOW
  if [ -f "$W" ] && cmp -s "$tmp" "$W"; then rm -f "$tmp"; return 0; fi
  install -m 0755 "$tmp" "$W"; rm -f "$tmp"
}
host_check() { # the wrapper lands where it should, as the job would see it
  local got; got=$(timeout 30 "$W" sh -c 'echo "$(id -un) $(hostname) $(findmnt -n -o FSTYPE /tmp) $(ls -A /run/user | wc -l) ${XDG_RUNTIME_DIR:-unset} ${DOCKER_HOST:-unset} $(pwd)"')
  [ "$got" = "$JOB_USER $HOSTNAME_ tmpfs 0 unset unset $HOME_" ] || die "host $H: the wrapper sees '$got', expected '$JOB_USER $HOSTNAME_ tmpfs 0 unset unset $HOME_'"
}

# ------------------------------------------------------------------ 3. images the job loads, a place for dist/u7s
envval() { sed -n "s/^$1=//p" "$ENGINES_ENV" | tail -n 1; }
JOB_IMAGE="" JOB_CLUSTER_IMAGE=""
readable_archive() { # readable_archive ARCHIVE: ARCHIVE if the job user can read it on every host, else a copy it can (with .id)
  local a=$1 c=$JOB_DIR/images/${1##*/} h ok=1
  # read on the hosts themselves: their /tmp is their own, so a checkout under /tmp is not there
  for h in "${HOSTS[@]}"; do "/usr/local/bin/u7s-host-$h-exec" test -r "$a" || ok=0; done
  if [ "$ok" = 1 ]; then echo "$a"; return; fi
  if [ ! -s "$c" ] || [ "$(cat "$c.id" 2>/dev/null)" != "$(cat "$a.id" 2>/dev/null)" ]; then
    log "copying $a to $c ($JOB_USER cannot read it on the hosts)"
    install -d -m 0755 "$JOB_DIR/images"; cp "$a" "$c.tmp"; chmod 0644 "$c.tmp"; mv "$c.tmp" "$c"
    [ ! -f "$a.id" ] || install -m 0644 "$a.id" "$c.id"
  fi
  echo "$c"
}
images() {
  install -d -m 0755 "$JOB_DIR" "$JOB_DIR/bin"
  local a; a=$(envval U7S_TEST_IMAGE_ARCHIVE)
  [ -s "$a" ] || die "no test image archive in $ENGINES_ENV: run tests/setup-engines.sh first"
  JOB_IMAGE=$(readable_archive "$a")
  a=$(envval U7S_TEST_CLUSTER_IMAGE_ARCHIVE)
  if [ -n "$a" ] && [ -s "$a" ]; then JOB_CLUSTER_IMAGE=$(readable_archive "$a"); fi
}

# ------------------------------------------------------------------ 4. facts
write_env() {
  { grep -Ev '^U7S_(HOST_[EF]|JOB)_' "$HOSTS_ENV" || true
    echo "U7S_JOB_HOSTS=$(IFS=,; echo "${HOSTS[*]}")"
    echo "U7S_JOB_USER=$JOB_USER"
    echo "U7S_JOB_UID=$UID_"
    echo "U7S_JOB_HOME=$HOME_"
    echo "U7S_JOB_BIN_DIR=$JOB_DIR/bin"
    echo "U7S_JOB_IMAGE_ARCHIVE=$JOB_IMAGE"
    echo "U7S_JOB_CLUSTER_IMAGE_ARCHIVE=$JOB_CLUSTER_IMAGE"
    local h; for h in "${HOSTS[@]}"; do
      select_host "$h"
      printf "U7S_HOST_${H^^}_%s\n" "NETNS=$NS" "HOSTNAME=$HOSTNAME_" "IP=$IP" "INTERFACE=eth0" "USER=$JOB_USER" "UID=$UID_" \
        "HOME=$HOME_" "EXEC=$W" "ENGINE=none" "SCRATCH=/tmp" "MOUNT_NS=$MNT" "CGROUP=$(cgroup_dirs "$CG" | tr '\n' ' ' | sed 's/ $//')"
    done
  } > "$HOSTS_ENV.tmp"
  mv "$HOSTS_ENV.tmp" "$HOSTS_ENV"
}

per_host() {
  [ -n "${UID_:-}" ] || user_env
  host_link "$NS" "veth-$H" "$IP"
  host_uts "$UTS" "$HOSTNAME_"
  mkdir -p /run/user   # the mount point of the hosts' empty /run/user (a machine without systemd may have none)
  mount_ns; cgroups; wrapper; host_check
}
phase prereqs prereqs
phase user job_user
for h in "${HOSTS[@]}"; do
  select_host "$h"; s=$(date +%s%N); per_host
  ms=$(ms_since "$s"); log "$(printf 'phase host-%s %21d.%01ds' "$h" $((ms / 1000)) $((ms % 1000 / 100)))"
done
phase images images
phase env-file write_env
ms=$(ms_since "$T0"); log "$(printf 'total %d.%01ds; hosts %s, user %s, home %s' $((ms / 1000)) $((ms % 1000 / 100)) "${HOSTS[*]}" "$JOB_USER" "$HOME_")"
