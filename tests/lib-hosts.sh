# tests/lib-hosts.sh: shell functions tests/setup-hosts.sh and tests/setup-host-trixie.sh share (sourced;
# the sourcing script defines log).
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
