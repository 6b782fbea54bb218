# tests/lib-hosts.sh: shell functions tests/setup-engines.sh, tests/setup-hosts.sh, tests/setup-host-trixie.sh and
# tests/setup-job-hosts.sh share (sourced; the sourcing script sets LOG_TAG, the prefix of its log lines).
T0=$(date +%s%N)
log() { echo "[$LOG_TAG] $*" >&2; }
die() { echo "[$LOG_TAG] ERROR: $*" >&2; exit 1; }
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
phase() { # phase NAME FUNCTION [ARG...]: run it and print how long it took
  local s name=$1; shift; s=$(date +%s%N); "$@"
  local ms; ms=$(ms_since "$s"); log "$(printf 'phase %-22s %3d.%01ds' "$name" $((ms / 1000)) $((ms % 1000 / 100)))"
}
ns_exists() { [ -e "/run/netns/$1" ]; }
is_mount() { findmnt -n "$1" >/dev/null 2>&1; }
kill_cgroup() { # kill_cgroup DIR: SIGKILL every process in DIR and below (only the test hosts' users live there), rmdir it
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
cgroup_dirs() { # cgroup_dirs NAME: the delegated cgroup directories u7s-NAME, as tests/setup-engines.sh makes them (v2, or v1 hybrid's two)
  if [ -f /sys/fs/cgroup/cgroup.controllers ]; then echo "/sys/fs/cgroup/u7s-$1"; return; fi
  [ -d /sys/fs/cgroup/systemd ] && echo "/sys/fs/cgroup/systemd/u7s-$1"
  [ -f /sys/fs/cgroup/unified/cgroup.controllers ] && echo "/sys/fs/cgroup/unified/u7s-$1"
  return 0
}
add_subids() { # add_subids USER: a subuid and a subgid range of 65536 after the highest in use, unless USER has one
  local u=$1 f start
  for f in subuid subgid; do
    touch /etc/$f
    grep -q "^$u:" /etc/$f && continue
    start=$(awk -F: 'BEGIN{m=100000} {if ($2+$3>m) m=$2+$3} END{print m}' /etc/$f)
    usermod "--add-${f}s" "$start-$((start + 65535))" "$u"
  done
}
host_link() { # host_link NETNS VETH IP: NETNS on the bridge $BRIDGE of $NET_NS as eth0 with IP/24, default route via $GATEWAY (idempotent)
  local n=$1 veth=$2 ip=$3
  [ -e "/run/netns/$n" ] || ip netns add "$n"
  ip -n "$n" link set lo up
  # Both ends are created inside their namespaces: nothing ever appears in the machine's own.
  ip -n "$n" link show eth0 >/dev/null 2>&1 || ip -n "$NET_NS" link add "$veth" type veth peer name eth0 netns "$n"
  ip -n "$NET_NS" link set "$veth" master "$BRIDGE" up
  ip -n "$n" -4 addr show dev eth0 | grep -q " $ip/24 " || ip -n "$n" addr add "$ip/24" dev eth0
  ip -n "$n" link set eth0 up
  ip -n "$n" route replace default via "$GATEWAY" dev eth0
}
host_uts() { # host_uts FILE HOSTNAME: a UTS namespace with HOSTNAME, kept by a bind mount on FILE like /run/netns (idempotent)
  findmnt -n "$1" >/dev/null 2>&1 && return 0
  touch "$1"; unshare --uts="$1" hostname "$2"
}
write_if_changed() { # write_if_changed FILE CONTENT: owned by $UID_:$GID_; returns 1 when it wrote
  [ -f "$1" ] && [ "$(cat "$1")" = "${2%$'\n'}" ] && return 0
  printf '%s' "$2" > "$1"; chown "$UID_:$GID_" "$1"; return 1
}
podman_config() { # podman_config [h]: $HOME_'s podman settings (owner $UID_:$GID_), as tests/setup-engines.sh gives u7stest (see why there)
  local cfg=$HOME_/.config/containers
  install -d -o "$UID_" -g "$GID_" "$HOME_/.config" "$cfg"
  write_if_changed "$cfg/storage.conf" $'[storage]\ndriver = "overlay"\n' || true
  write_if_changed "$cfg/containers.conf" \
    $'[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n' || true
}
