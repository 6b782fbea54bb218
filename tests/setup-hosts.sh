#!/usr/bin/env bash
# tests/setup-hosts.sh: two test "hosts" on this machine for u7s's multi-host tests (as root).
#
#   bash tests/setup-hosts.sh [--engines A,B] [--uplink]   # create, start, load images (idempotent); A,B: docker|podman
#   bash tests/setup-hosts.sh --status
#   bash tests/setup-hosts.sh --down            # remove everything this script made
#
# A test host is a network namespace (u7s-host-a, u7s-host-b) with its own UTS namespace (hostname
# host-a, host-b), a veth to a bridge in a third namespace (u7s-hosts-net), a default route inside
# it (so `ip route get 1` answers with the host's address), its own unprivileged user (u7shosta,
# u7shostb) with subuid/subgid ranges and delegated cgroups, and that user's rootless engine
# started INSIDE the namespace: Docker on A and Podman on B unless --engines says otherwise
# (U7S_HOSTS_ENGINES too). Published ports then listen on that host's address only.
# /usr/local/bin/u7s-host-a-exec CMD... runs CMD as host A's user, in its namespaces and cgroups.
# Host A has a second interface (data0, 10.213.1.1/24, on another bridge) for --host-ip-interface tests.
# Nothing leaves the machine: the bridge namespace has no route anywhere else, unless --uplink
# (U7S_HOSTS_UPLINK=1) is given: then a veth (u7s-hosts-up <-> up0) links the bridge namespace to
# the machine's, which masquerades the hosts' traffic out of its default route, so both hosts reach
# registries (the real-cluster suite, tests/cluster, builds the real node image on each). DNS in the
# hosts is the machine's /etc/resolv.conf, so it must name a nameserver outside 127.0.0.0/8.
# Needs tests/setup-engines.sh first (packages, the test image archive, tests/.work/engines.env).
# Writes tests/.work/hosts.env (read by tests/e2e/harness.ts). Knob: U7S_WAIT_TIMEOUT (seconds, default 90).
# Then runs tests/setup-host-trixie.sh: hosts C and D, Debian 13's rootless Podman 5 (pasta) and Docker 26 (U7S_HOST_C=0: not),
# and tests/setup-job-hosts.sh: hosts E and F, a batch job's nodes with no engine running (U7S_HOST_E=0: not).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib-hosts.sh
LOG_TAG=setup-hosts
. "$HERE/lib-hosts.sh"
WORK=$HERE/.work
ENGINES_ENV=$WORK/engines.env
HOSTS_ENV=$WORK/hosts.env
WAIT=${U7S_WAIT_TIMEOUT:-90}
RUN_DIR=/run/u7s-test-hosts
LOG_DIR=/var/log/u7s-test-hosts
DOCKERD_ROOTLESS=/usr/share/docker.io/contrib/dockerd-rootless.sh
SAFE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
NET_NS=u7s-hosts-net            # holds the bridge: the "switch" between the hosts
BRIDGE=br0
PREFIX=10.213.0                 # the hosts' LAN; .254 is the bridge namespace (their gateway)
GATEWAY=$PREFIX.254
BRIDGE2=br1                     # a second network, only host A is on it
SECOND_IF=data0                 # host A's second interface, on br1
SECOND_IP=10.213.1.1
UPLINK_IF=u7s-hosts-up           # --uplink: the machine's end of the veth to the bridge namespace
UPLINK_NET=10.213.255           # --uplink: .1 the machine, .2 the bridge namespace (a /30)
HOSTS_CIDR=10.213.0.0/16        # every address this script hands out
HOSTS=(a b)
declare -A IP=([a]=$PREFIX.1 [b]=$PREFIX.2)


[ "$(id -u)" = 0 ] || die "run as root: it creates namespaces, users and engines"
export PATH=$SAFE_PATH:$PATH

# Per-host names (h = a | b).
ns() { echo "u7s-host-$1"; }
hostname_of() { echo "host-$1"; }
user_of() { echo "u7shost$1"; }
wrapper_of() { echo "/usr/local/bin/u7s-host-$1-exec"; }
uts_of() { echo "$RUN_DIR/uts-$1"; }
host_env() { # host_env h: sets U H UID_ GID_ HOME_ XDG_ SOCK W for host h (user must exist)
  U=$(user_of "$1"); W=$(wrapper_of "$1")
  UID_=$(id -u "$U"); GID_=$(id -g "$U")
  HOME_=$(getent passwd "$U" | cut -d: -f6)
  XDG_=/run/user/$UID_; SOCK=$XDG_/docker.sock
}
cg_dirs() { cgroup_dirs "$1"; } # cg_dirs USER: the delegated cgroup directories (tests/lib-hosts.sh)
ping_sock() { [ -S "$1" ] && [ "$(curl -s --max-time 5 --unix-socket "$1" http://localhost/_ping 2>/dev/null)" = OK ]; }
as_host() { local h=$1; shift; timeout 600 "$(wrapper_of "$h")" "$@"; }

# ------------------------------------------------------------------ engines choice
ENGINES_ARG=${U7S_HOSTS_ENGINES:-docker,podman}
UPLINK=${U7S_HOSTS_UPLINK:-0}
ACTION=up
while [ $# -gt 0 ]; do
  case $1 in
    --engines) [ $# -ge 2 ] || die "--engines needs A,B (docker|podman each)"; ENGINES_ARG=$2; shift 2 ;;
    --engines=*) ENGINES_ARG=${1#--engines=}; shift ;;
    --uplink) UPLINK=1; shift ;;
    --status) ACTION=status; shift ;;
    --down) ACTION=down; shift ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) die "unknown argument '$1' (try --help)" ;;
  esac
done
declare -A ENGINE
IFS=, read -r ENGINE[a] ENGINE[b] <<<"$ENGINES_ARG"
for h in "${HOSTS[@]}"; do
  case ${ENGINE[$h]:-} in docker|podman) ;; *) die "--engines $ENGINES_ARG: want A,B with each docker or podman" ;; esac
done

# ------------------------------------------------------------------ rootless dockerd per host
start_docker() { # start_docker h
  host_env "$1"
  if ping_sock "$SOCK"; then return 0; fi
  local logf=$LOG_DIR/dockerd-$1.log deadline=$(( $(date +%s) + WAIT ))
  echo "--- $(date -u +%FT%TZ) starting" >> "$logf"
  # As in setup-engines.sh: setsid, every fd to the log, cd / (the daemon outlives this script).
  # The wrapper enters the host's network namespace with nsenter (keeps /sys/fs/cgroup; `ip netns
  # exec` remounts /sys without it and runc then fails), so rootlesskit, slirp4netns and the
  # published ports live in the host's namespace.
  (cd / && exec setsid "$W" "$DOCKERD_ROOTLESS" >>"$logf" 2>&1 </dev/null) &
  local pid=$!; echo "$pid" > "$RUN_DIR/dockerd-$1-launcher.pid"
  until ping_sock "$SOCK"; do
    kill -0 "$pid" 2>/dev/null || { tail -n 30 "$logf" >&2; die "host $1: rootless dockerd exited (log: $logf)"; }
    [ "$(date +%s)" -lt "$deadline" ] || { tail -n 30 "$logf" >&2; die "host $1: rootless dockerd not up after ${WAIT}s (log: $logf)"; }
    sleep 0.2
  done
  case $(DOCKER_HOST=unix://$SOCK /usr/bin/docker info --format '{{json .SecurityOptions}}') in
    *rootless*) ;; *) die "host $1: the daemon on $SOCK is not rootless" ;;
  esac
}
stop_pid() { # stop_pid NAME PID COMM: TERM, wait up to 60 s, only if PID still runs COMM
  [ "$(cat "/proc/$2/comm" 2>/dev/null)" = "$3" ] || return 0
  log "stopping $1 (pid $2)"; kill -TERM "$2" 2>/dev/null || true
  for _ in $(seq 300); do kill -0 "$2" 2>/dev/null || return 0; sleep 0.2; done
  log "WARNING: $1 (pid $2) still alive after 60s"; return 1
}
stop_docker() { # stop_docker h
  host_env "$1"
  [ -f "$XDG_/docker.pid" ] && stop_pid "host $1 rootless dockerd" "$(cat "$XDG_/docker.pid")" dockerd
  local f=$RUN_DIR/dockerd-$1-launcher.pid
  if [ -f "$f" ]; then
    for _ in $(seq 50); do kill -0 "$(cat "$f")" 2>/dev/null || break; sleep 0.2; done
    stop_pid "host $1 dockerd launcher" "$(cat "$f")" runuser || true; rm -f "$f"
  fi
  return 0
}

# ------------------------------------------------------------------ status
status() {
  local h
  for n in "$NET_NS" "$(ns a)" "$(ns b)"; do
    if ns_exists "$n"; then echo "netns $n: present"; else echo "netns $n: absent"; fi
  done
  for h in "${HOSTS[@]}"; do
    id "$(user_of "$h")" >/dev/null 2>&1 || { echo "host $h: user $(user_of "$h") absent"; continue; }
    host_env "$h"
    local addr=""; ns_exists "$(ns "$h")" && addr=$(ip -n "$(ns "$h")" -4 -br addr show eth0 2>/dev/null | awk '{print $3}')
    echo "host $h: user $U, address ${addr:-none}, wrapper $W"
    if ping_sock "$SOCK"; then echo "  rootless docker: up ($SOCK)"; else echo "  rootless docker: down"; fi
    [ -x "$W" ] && ns_exists "$(ns "$h")" &&
      echo "  rootless podman: $(as_host "$h" podman ps -q 2>/dev/null | wc -l) containers running"
  done
  [ -f "$HOSTS_ENV" ] && echo "env file: $HOSTS_ENV"
  return 0
}

# ------------------------------------------------------------------ down
down() {
  local h d
  # hosts C..F first: their veths hang on this script's bridge
  bash "$HERE/setup-job-hosts.sh" --down || log "WARNING: tests/setup-job-hosts.sh --down failed"
  bash "$HERE/setup-host-trixie.sh" --down || log "WARNING: tests/setup-host-trixie.sh --down failed"
  for h in "${HOSTS[@]}"; do
    local u; u=$(user_of "$h")
    if id "$u" >/dev/null 2>&1; then
      host_env "$h"
      # Orderly first (dockerd stops its containers; podman's conmons stop theirs), then whatever is left.
      stop_docker "$h" || true
      if [ -x "$W" ] && ns_exists "$(ns "$h")"; then
        as_host "$h" podman rm -a -f -t 0 >/dev/null 2>&1 || true
        as_host "$h" podman system reset -f >/dev/null 2>&1 || true
      fi
      for d in $(cg_dirs "$u"); do kill_cgroup "$d"; done
      local left; left=$(pgrep -u "$UID_" || true)
      if [ -n "$left" ]; then
        log "host $h: killing leftover processes of $u: $(echo $left)"; kill -KILL $left 2>/dev/null || true
        for _ in $(seq 50); do pgrep -u "$UID_" >/dev/null || break; sleep 0.1; done
      fi
      rm -rf --one-file-system "$XDG_"
      userdel -r "$u" >/dev/null 2>&1 || userdel "$u" || log "WARNING: userdel $u failed"
      rm -rf --one-file-system "$HOME_"
      log "host $h: removed user $u"
    fi
    for d in $(cg_dirs "$u"); do kill_cgroup "$d"; done
    local f; for f in subuid subgid; do [ -f /etc/$f ] && sed -i "/^$u:/d" /etc/$f; done
    rm -f "$(wrapper_of "$h")" "$RUN_DIR/dockerd-$h-launcher.pid"
    if [ -e "$(uts_of "$h")" ]; then umount "$(uts_of "$h")" 2>/dev/null || true; rm -f "$(uts_of "$h")"; fi
    ! ns_exists "$(ns "$h")" || ip netns del "$(ns "$h")"
  done
  uplink_down
  ! ns_exists "$NET_NS" || ip netns del "$NET_NS"
  # /run/netns: iproute2 made it (a bind mount of itself) for our namespaces; remove it only when empty
  if [ -d /run/netns ] && [ -z "$(ls -A /run/netns)" ]; then umount /run/netns 2>/dev/null || true; rmdir /run/netns 2>/dev/null || true; fi
  rm -rf "$RUN_DIR" "$LOG_DIR"
  rm -f "$HOSTS_ENV"
  log "down: namespaces, users, engines, wrappers and $HOSTS_ENV removed"
}

# --uplink: a route out for the hosts, through the machine's own namespace (NAT), and back.
ipt() { # ipt TABLE CHAIN RULE...: add the rule once
  iptables -t "$1" -C "$2" "${@:3}" 2>/dev/null || iptables -t "$1" -I "$2" "${@:3}"
}
uplink_rules() { # uplink_rules add|del: the machine's NAT and forwarding rules for the hosts' traffic
  local rules=(
    "nat POSTROUTING -s $HOSTS_CIDR ! -d $HOSTS_CIDR -j MASQUERADE"
    "filter FORWARD -s $HOSTS_CIDR -j ACCEPT"
    "filter FORWARD -d $HOSTS_CIDR -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"
  )
  local op=$1 r
  for r in "${rules[@]}"; do
    # shellcheck disable=SC2086 # a rule is words
    if [ "$op" = add ]; then ipt $r; else iptables -t ${r%% *} -D ${r#* } 2>/dev/null || true; fi
  done
}
uplink_down() { # remove what uplink made (nothing when it made nothing)
  if ip link show "$UPLINK_IF" >/dev/null 2>&1; then ip link del "$UPLINK_IF"; fi # both ends
  ip route del "$HOSTS_CIDR" 2>/dev/null || true
  if command -v iptables >/dev/null; then uplink_rules del; fi
}
uplink() { # without --uplink, a re-run takes an earlier run's uplink away: nothing leaves the machine
  if [ "$UPLINK" != 1 ]; then uplink_down; return 0; fi
  command -v iptables >/dev/null || die "--uplink needs iptables"
  grep -E '^nameserver[[:space:]]' /etc/resolv.conf | grep -Evq '^nameserver[[:space:]]+127\.' ||
    die "--uplink: /etc/resolv.conf names no nameserver outside 127.0.0.0/8, which the hosts' namespaces could reach; point it at a real one (e.g. systemd-resolved's /run/systemd/resolve/resolv.conf)"
  ip link show "$UPLINK_IF" >/dev/null 2>&1 || ip link add "$UPLINK_IF" type veth peer name up0 netns "$NET_NS"
  ip -4 addr show dev "$UPLINK_IF" | grep -q " $UPLINK_NET.1/30 " || ip addr add "$UPLINK_NET.1/30" dev "$UPLINK_IF"
  ip link set "$UPLINK_IF" up
  ip -n "$NET_NS" -4 addr show dev up0 | grep -q " $UPLINK_NET.2/30 " || ip -n "$NET_NS" addr add "$UPLINK_NET.2/30" dev up0
  ip -n "$NET_NS" link set up0 up
  ip -n "$NET_NS" route replace default via "$UPLINK_NET.1" dev up0
  ip netns exec "$NET_NS" sysctl -qw net.ipv4.ip_forward=1
  ip route replace "$HOSTS_CIDR" via "$UPLINK_NET.2" dev "$UPLINK_IF"
  sysctl -qw net.ipv4.ip_forward=1
  uplink_rules add
  log "uplink: the hosts reach the network through $UPLINK_IF (NAT)"
}

case $ACTION in
  status) status; exit 0 ;;
  down) down; exit 0 ;;
esac

# ------------------------------------------------------------------ 1. prerequisites
prereqs() {
  [ -f "$ENGINES_ENV" ] || die "$ENGINES_ENV missing: run tests/setup-engines.sh first"
  [ -x "$DOCKERD_ROOTLESS" ] || die "$DOCKERD_ROOTLESS missing: run tests/setup-engines.sh first"
  local b; for b in ip nsenter unshare runuser podman docker curl; do command -v "$b" >/dev/null || die "$b missing"; done
  mkdir -p "$RUN_DIR" "$LOG_DIR"
}

# ------------------------------------------------------------------ 2. network: bridge namespace + one namespace per host
network() {
  if ! ns_exists "$NET_NS"; then
    ip netns add "$NET_NS"
    ip -n "$NET_NS" link set lo up
  fi
  ip -n "$NET_NS" link show "$BRIDGE" >/dev/null 2>&1 || ip -n "$NET_NS" link add "$BRIDGE" type bridge
  ip -n "$NET_NS" -4 addr show dev "$BRIDGE" | grep -q " $GATEWAY/24 " || ip -n "$NET_NS" addr add "$GATEWAY/24" dev "$BRIDGE"
  ip -n "$NET_NS" link set "$BRIDGE" up
  local h n
  for h in "${HOSTS[@]}"; do
    host_link "$(ns "$h")" "veth-$h" "${IP[$h]}"
    # The host's hostname lives in a UTS namespace of its own, kept by a bind mount like /run/netns.
    host_uts "$(uts_of "$h")" "$(hostname_of "$h")"
  done
  # Host A's second network interface (this kernel has no dummy devices): a veth to a second bridge.
  n=$(ns a)
  ip -n "$NET_NS" link show "$BRIDGE2" >/dev/null 2>&1 || ip -n "$NET_NS" link add "$BRIDGE2" type bridge
  ip -n "$NET_NS" link set "$BRIDGE2" up
  ip -n "$n" link show "$SECOND_IF" >/dev/null 2>&1 ||
    ip -n "$NET_NS" link add veth-a2 type veth peer name "$SECOND_IF" netns "$n"
  ip -n "$NET_NS" link set veth-a2 master "$BRIDGE2" up
  ip -n "$n" -4 addr show dev "$SECOND_IF" | grep -q " $SECOND_IP/24 " || ip -n "$n" addr add "$SECOND_IP/24" dev "$SECOND_IF"
  ip -n "$n" link set "$SECOND_IF" up
}

# ------------------------------------------------------------------ 3. users, cgroups, wrappers
users() {
  local h u d
  for h in "${HOSTS[@]}"; do
    u=$(user_of "$h")
    id "$u" >/dev/null 2>&1 || { useradd -m -s /bin/bash "$u"; log "created user $u"; }
    add_subids "$u"
    host_env "$h"
    install -d -o "$UID_" -g "$GID_" -m 0700 "$XDG_"
    local dirs; dirs=$(cg_dirs "$u" | tr '\n' ' ')
    for d in $dirs; do mkdir -p "$d"; chown -R "$UID_:$GID_" "$d"; done
    local tmp; tmp=$(mktemp)
    cat > "$tmp" <<EOF
#!/bin/sh
# $W CMD [ARG...]: run CMD on test host $h: as $u, in the network namespace $(ns "$h") and the
# UTS namespace of host $(hostname_of "$h"), inside $u's delegated cgroups, with a clean
# environment for its rootless engines (written by tests/setup-hosts.sh). Pass more variables
# with: $W env K=V CMD ...
for d in $dirs; do echo \$\$ > "\$d/cgroup.procs" 2>/dev/null || true; done
set -- env -i HOME=$HOME_ USER=$u LOGNAME=$u SHELL=/bin/bash LANG=C.UTF-8 PATH=$SAFE_PATH \\
  XDG_RUNTIME_DIR=$XDG_ DOCKER_HOST=unix://$SOCK \\
  sh -c 'cd "\$0" 2>/dev/null || cd; exec "\$@"' "\$(pwd)" "\$@"
case \$(id -u) in
  # nsenter, not \`ip netns exec\`: that remounts /sys without the cgroup mounts and runc fails.
  0) exec nsenter --net=/run/netns/$(ns "$h") --uts=$(uts_of "$h") runuser -u $u -- "\$@" ;;
  $UID_)
    [ "\$(stat -L -c %i /proc/self/ns/net)" = "\$(stat -L -c %i /run/netns/$(ns "$h"))" ] ||
      { echo "\$0: as $u, run me only inside $(ns "$h") (or run me as root)" >&2; exit 1; }
    exec "\$@" ;;
  *) echo "\$0: run me as root or as $u" >&2; exit 1 ;;
esac
EOF
    install -m 0755 "$tmp" "$W"; rm -f "$tmp"
    podman_config "$h"
  done
}
# ------------------------------------------------------------------ 4. engines
engines() {
  local h
  for h in "${HOSTS[@]}"; do
    if [ "${ENGINE[$h]}" = docker ]; then start_docker "$h"; else stop_docker "$h"; fi
  done
}

# ------------------------------------------------------------------ 5. images
envval() { sed -n "s/^$1=//p" "$ENGINES_ENV" | tail -n 1; }
TEST_IMAGE=""; CLUSTER_IMAGE=""
image_id() { # image_id h REF: the image's id in host h's engine, without sha256:
  local id; id=$(as_host "$1" "${ENGINE[$1]}" image inspect --format '{{.Id}}' "$2" 2>/dev/null || true); echo "${id#sha256:}"
}
load_from() { # load_from h REF WANT_ID SOURCE...: load REF into host h's engine from SOURCE's stdout, unless it is there
  local h=$1 ref=$2 want=${3#sha256:}; shift 3
  [ "$(image_id "$h" "$ref")" = "$want" ] && return 0
  log "host $h (${ENGINE[$h]}): loading $ref"
  "$@" | as_host "$h" "${ENGINE[$h]}" load -q >/dev/null || die "host $h: loading $ref failed"
  [ "$(image_id "$h" "$ref")" = "$want" ] || die "host $h: $ref has id $(image_id "$h" "$ref") after load, expected $want"
  # the version this load replaced is now untagged: drop it (hundreds of MB each)
  as_host "$h" "${ENGINE[$h]}" image prune -f >/dev/null 2>&1 || true
}
images() {
  TEST_IMAGE=$(envval U7S_TEST_IMAGE)
  local archive; archive=$(envval U7S_TEST_IMAGE_ARCHIVE)
  [ -n "$TEST_IMAGE" ] && [ -s "$archive" ] && [ -s "$archive.id" ] ||
    die "no test image archive in $ENGINES_ENV: run tests/setup-engines.sh first"
  local h want
  for h in "${HOSTS[@]}"; do load_from "$h" "$TEST_IMAGE" "$(cat "$archive.id")" cat "$archive"; done
  # The cluster test image (kubectl, helm and the doubles), once tests/setup-engines.sh makes it:
  # from its archive if it writes one, else straight from the test user's rootless docker.
  CLUSTER_IMAGE=$(envval U7S_TEST_CLUSTER_IMAGE)
  [ -n "$CLUSTER_IMAGE" ] || { log "no U7S_TEST_CLUSTER_IMAGE in $ENGINES_ENV yet: cluster image not loaded"; return 0; }
  archive=$(envval U7S_TEST_CLUSTER_IMAGE_ARCHIVE)
  local src=()
  if [ -n "$archive" ] && [ -s "$archive" ] && [ -s "$archive.id" ]; then
    want=$(cat "$archive.id"); src=(cat "$archive")
  elif [ -n "$archive" ] && [ -s "$archive" ]; then
    want=$(tar -xOf "$archive" manifest.json | sed -n 's/.*"Config":"\(blobs\/sha256\/\)\{0,1\}\([0-9a-f]\{64\}\)\(\.json\)\{0,1\}".*/\2/p')
    src=(cat "$archive")
  fi
  if [ -z "${want:-}" ] || [ ${#src[@]} = 0 ]; then
    local wrapper sock; wrapper=$(envval U7S_AS_TEST_USER); sock=$(envval DOCKER_SOCK)
    want=$(DOCKER_HOST=unix://$sock /usr/bin/docker image inspect --format '{{.Id}}' "$CLUSTER_IMAGE" 2>/dev/null) ||
      die "$CLUSTER_IMAGE: no archive ($archive) and not in $(envval U7S_TEST_USER)'s docker: re-run tests/setup-engines.sh"
    src=("$wrapper" docker save "$CLUSTER_IMAGE")
  fi
  for h in "${HOSTS[@]}"; do load_from "$h" "$CLUSTER_IMAGE" "$want" "${src[@]}"; done
}

# ------------------------------------------------------------------ 6. facts
write_env() {
  mkdir -p "$WORK"
  {
    echo "# written by tests/setup-hosts.sh; read by tests/e2e/harness.ts (loadHostsEnv)"
    echo "U7S_HOSTS=$(IFS=,; echo "${HOSTS[*]}")"
    echo "U7S_HOSTS_NETNS=$NET_NS"
    echo "U7S_HOSTS_GATEWAY=$GATEWAY"
    echo "U7S_HOSTS_TEST_IMAGE=$TEST_IMAGE"
    echo "U7S_HOSTS_CLUSTER_IMAGE=$CLUSTER_IMAGE"
    echo "U7S_HOSTS_LOG_DIR=$LOG_DIR"
    echo "U7S_HOSTS_UPLINK=$UPLINK"
    local h H
    for h in "${HOSTS[@]}"; do
      host_env "$h"; H=${h^^}
      echo "U7S_HOST_${H}_NETNS=$(ns "$h")"
      echo "U7S_HOST_${H}_HOSTNAME=$(hostname_of "$h")"
      echo "U7S_HOST_${H}_IP=${IP[$h]}"
      echo "U7S_HOST_${H}_INTERFACE=eth0"
      echo "U7S_HOST_${H}_USER=$U"
      echo "U7S_HOST_${H}_UID=$UID_"
      echo "U7S_HOST_${H}_HOME=$HOME_"
      echo "U7S_HOST_${H}_XDG_RUNTIME_DIR=$XDG_"
      echo "U7S_HOST_${H}_EXEC=$W"
      echo "U7S_HOST_${H}_ENGINE=${ENGINE[$h]}"
      echo "U7S_HOST_${H}_DOCKER_SOCK=$SOCK"
    done
    echo "U7S_HOST_A_SECOND_INTERFACE=$SECOND_IF"
    echo "U7S_HOST_A_SECOND_IP=$SECOND_IP"
  } > "$HOSTS_ENV.tmp"
  mv "$HOSTS_ENV.tmp" "$HOSTS_ENV"
}

phase prereqs prereqs
phase network network
phase uplink uplink
phase users+cgroups users
phase engines engines
phase images images
phase env-file write_env
# Hosts C and D (Debian 13's Podman 5 on pasta, Docker 26 with RootlessKit 2) join the same bridge; U7S_HOST_C=0 leaves them out.
if [ "${U7S_HOST_C:-1}" != 0 ]; then phase host-c bash "$HERE/setup-host-trixie.sh"; fi
# Hosts E and F (a batch job's two nodes: one user and home, node-local /tmp, no engine); U7S_HOST_E=0 leaves them out.
if [ "${U7S_HOST_E:-1}" != 0 ]; then phase host-e+f bash "$HERE/setup-job-hosts.sh"; fi
ms=$(ms_since "$T0"); log "$(printf 'total %d.%01ds (engines A=%s B=%s); env file %s' $((ms / 1000)) $((ms % 1000 / 100)) "${ENGINE[a]}" "${ENGINE[b]}" "$HOSTS_ENV")"
