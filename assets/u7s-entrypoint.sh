#!/bin/bash
# u7s-entrypoint: the first process of a u7s node container. It prepares two files,
# then execs its arguments (kind's entrypoint, which execs systemd).
#
#  1. KUBELET_EXTRA_ARGS in /etc/default/kubelet gets --cloud-provider=external and
#     --node-labels=usernetes/host-ip=$HOST_IP. /etc is a persistent volume, so on a
#     restart the file already holds the flags of the last boot: they are replaced,
#     never appended twice, and a changed HOST_IP replaces the old label.
#  2. Control-plane host entries saved by the join script in /etc/u7s/hosts, and the one
#     upstream Usernetes keeps in /etc/hosts.u7s (its join-command writes it; u7s writes
#     it too), are put back into /etc/hosts, which the engine writes afresh on every start.
#
# Without arguments it only does the above and exits, so the join script can run it
# again after saving a host entry. U7S_ROOT (default: empty) is prepended to every path,
# which lets tests run it against a scratch directory.
set -eu -o pipefail

root="${U7S_ROOT:-}"
host_ip="${HOST_IP:-${U7S_HOST_IP:-}}"
kubelet_defaults="$root/etc/default/kubelet"
saved_hosts="$root/etc/u7s/hosts"
upstream_hosts="$root/etc/hosts.u7s"
hosts="$root/etc/hosts"
# Marks the /etc/hosts lines this script added, so a rerun replaces them.
hosts_marker="# u7s: saved control plane"

log() { echo "u7s-entrypoint: $*" >&2; }

# merged_args VALUE FLAG...: VALUE (a KUBELET_EXTRA_ARGS value, maybe quoted) without
# any earlier copy of the flags this script manages, followed by FLAG...
merged_args() {
  local value=$1 quote="" skip=0 word
  local -a words=() out=()
  shift
  if [[ $value == \"*\" || $value == \'*\' ]] && [ ${#value} -ge 2 ]; then
    quote=${value:0:1}
    value=${value:1:${#value}-2}
  fi
  read -r -a words <<<"$value" || true
  for word in ${words[@]+"${words[@]}"}; do
    if [ $skip = 1 ]; then
      skip=0
      continue
    fi
    case $word in
      --cloud-provider=* | --node-labels=usernetes/host-ip=*) continue ;;
      # The same flags written as two words: drop the value too.
      --cloud-provider) skip=1; continue ;;
    esac
    out+=("$word")
  done
  out+=("$@")
  printf '%s%s%s' "$quote" "${out[*]}" "$quote"
}

# set_kubelet_args FLAG...: puts FLAG... into every KUBELET_EXTRA_ARGS line of the
# kubelet defaults file (adding the line when there is none), replacing the file atomically.
set_kubelet_args() {
  local line found=0 tmp
  mkdir -p "$(dirname "$kubelet_defaults")"
  tmp=$(mktemp "$kubelet_defaults.XXXXXX")
  {
    if [ -f "$kubelet_defaults" ]; then
      # `|| [ -n "$line" ]`: kind's file has no newline after its last line.
      while IFS= read -r line || [ -n "$line" ]; do
        if [[ $line == KUBELET_EXTRA_ARGS=* ]]; then
          line="KUBELET_EXTRA_ARGS=$(merged_args "${line#KUBELET_EXTRA_ARGS=}" "$@")"
          found=1
        fi
        printf '%s\n' "$line"
      done <"$kubelet_defaults"
    fi
    if [ $found = 0 ]; then
      printf 'KUBELET_EXTRA_ARGS=%s\n' "$(merged_args "" "$@")"
    fi
  } >"$tmp"
  chmod 0644 "$tmp"
  mv -f "$tmp" "$kubelet_defaults"
}

# restore_hosts: appends each saved "IP NAME..." entry (of /etc/u7s/hosts, then
# /etc/hosts.u7s) to /etc/hosts unless the same entry is there already; lines added by
# an earlier run are replaced.
restore_hosts() {
  local line ip names src
  local -a kept=() fields=() sources=()
  local -A present=()
  for src in "$saved_hosts" "$upstream_hosts"; do
    [ ! -s "$src" ] || sources+=("$src")
  done
  [ ${#sources[@]} -gt 0 ] || return 0
  if [ -f "$hosts" ]; then
    while IFS= read -r line || [ -n "$line" ]; do
      [[ $line == *"$hosts_marker" ]] && continue
      kept+=("$line")
      read -r -a fields <<<"${line%%#*}" || true
      [ ${#fields[@]} -eq 0 ] || present["${fields[*]}"]=1
    done <"$hosts"
  fi
  local merged
  merged=$(
    [ ${#kept[@]} -eq 0 ] || printf '%s\n' "${kept[@]}"
    for src in "${sources[@]}"; do
      while read -r ip names || [ -n "$ip" ]; do
        names=${names%%#*}
        read -r -a fields <<<"$ip $names" || true
        case ${fields[0]:-} in '' | '#'*) continue ;; esac
        if [ ${#fields[@]} -lt 2 ]; then
          log "ignoring a line of $src without a host name: $ip"
          continue
        fi
        [ -z "${present["${fields[*]}"]:-}" ] || continue
        present["${fields[*]}"]=1
        printf '%s %s\n' "${fields[*]}" "$hosts_marker"
      done <"$src"
    done
  )
  # Rewrite in place, not by rename: the engine bind-mounts /etc/hosts.
  printf '%s\n' "$merged" >"$hosts"
  log "restored control-plane host entries from ${sources[*]}"
}

flags=(--cloud-provider=external)
# A label value cannot hold an IPv6 address (no colons allowed), and HOST_IP is IPv4.
if [[ $host_ip =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]]; then
  flags+=("--node-labels=usernetes/host-ip=$host_ip")
else
  log "HOST_IP is ${host_ip:+not an IP address: }${host_ip:-unset}; the node gets no usernetes/host-ip label"
fi
set_kubelet_args "${flags[@]}"
restore_hosts

exec "$@"
