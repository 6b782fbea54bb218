#!/bin/bash
# u7s-sync-external-ip: makes every node reachable at its host's address (upstream Usernetes'
# sync-external-ip, made idempotent). For each node with a usernetes/host-ip label (set by the
# u7s entrypoint from HOST_IP):
#   1. status.addresses = exactly [ExternalIP = the host IP], as upstream's script sets them (the
#      InternalIP is the node container's address, which no other host can route to; add-ons that
#      prefer it, like metrics-server, would fail across hosts). The kubelet runs with
#      --cloud-provider=external, and then leaves addresses alone once any are set ("provider set
#      addresses should take precedence", kubelet's nodestatus NodeAddress setter): it adds its
#      InternalIP and Hostname only to a node that has no address yet, i.e. before the first sync;
#   2. annotation flannel.alpha.coreos.com/public-ip-overwrite = the host IP (overwritten when it
#      changed), and u7s.io/public-ip-overwrite-time = when this script set it (UTC);
#   3. taint node.cloudprovider.kubernetes.io/uninitialized removed (no other taint is touched:
#      the control plane's node-role taint is u7s up's business, never this service's);
#   4. flanneld reads the overwrite only when it starts, so a Flannel pod that STARTED before the
#      overwrite was set announces an older IP (its node's flannel.alpha.coreos.com/public-ip
#      differs from the host IP): it is deleted, and its DaemonSet recreates it. The replacement
#      starts after the overwrite, so it is never deleted for the same change (at most one restart
#      per change), and a pod still starting (no container running yet) is left alone: it will read
#      the overwrite when it starts. Start times come from each node's kubelet: the hosts of a
#      cluster need clocks that agree to the second, as Kubernetes' certificates and leases do.
# Runs in the control-plane node with the admin kubeconfig.
#   --once       sync once and print one line per node (what changed, or "in sync")
#   --every N    sync every N seconds forever, printing only changes (the node's systemd service)
set -eu -o pipefail

HOST_IP_LABEL=usernetes/host-ip
OVERWRITE=flannel.alpha.coreos.com/public-ip-overwrite
OVERWRITE_TIME=u7s.io/public-ip-overwrite-time
TAINT=node.cloudprovider.kubernetes.io/uninitialized
FLANNEL_NS=kube-flannel
FLANNEL_SELECTOR=app=flannel
IPV4='^[0-9]{1,3}(\.[0-9]{1,3}){3}$'
# RFC 3339 in UTC, as the API server writes times; compared to the second as text.
TIME='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}'

# One line per node, fields separated by "|" (not a tab: `read` merges runs of whitespace
# separators, so an empty field would shift the others): name, host IP label, addresses
# (Type=addr,...), overwrite annotation, its time, public-ip annotation (written by Flannel), taint keys.
NODES_JSONPATH='{range .items[*]}{.metadata.name}{"|"}{.metadata.labels.usernetes/host-ip}{"|"}{range .status.addresses[*]}{.type}={.address},{end}{"|"}{.metadata.annotations.flannel\.alpha\.coreos\.com/public-ip-overwrite}{"|"}{.metadata.annotations.u7s\.io/public-ip-overwrite-time}{"|"}{.metadata.annotations.flannel\.alpha\.coreos\.com/public-ip}{"|"}{range .spec.taints[*]}{.key},{end}{"\n"}{end}'
# One line per Flannel pod: name, node, deletion time (set while it terminates), start time of each running container.
PODS_JSONPATH='{range .items[*]}{.metadata.name}{"|"}{.spec.nodeName}{"|"}{.metadata.deletionTimestamp}{"|"}{range .status.containerStatuses[*]}{.state.running.startedAt},{end}{"\n"}{end}'

# started_at STARTS: the earliest start time in a list "t1,t2," (empty when no container runs yet).
started_at() {
  local t first=""
  local -a times=()
  IFS=, read -r -a times <<<"$1" || true
  for t in ${times[@]+"${times[@]}"}; do
    [[ $t =~ $TIME ]] || continue
    t=${t:0:19}
    if [ -z "$first" ] || [[ $t < $first ]]; then first=$t; fi
  done
  echo "$first"
}

sync_once() { # sync_once VERBOSE
  local verbose=$1 name host_ip addrs overwrite set_time public taints pods pod pod_node deleting starts started now
  local -a did
  local nodes
  nodes=$(kubectl get nodes -o jsonpath="$NODES_JSONPATH")
  while IFS='|' read -r name host_ip addrs overwrite set_time public taints; do
    [ -n "$name" ] || continue
    if ! [[ $host_ip =~ $IPV4 ]]; then
      echo "$name: no $HOST_IP_LABEL label (is its node container started by u7s with HOST_IP?); skipped"
      continue
    fi
    did=()
    now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    # Exactly one address: the ExternalIP, equal to the host IP (a merge patch replaces the list).
    if [ "$addrs" != "ExternalIP=$host_ip," ]; then
      kubectl patch node "$name" --subresource status --type merge -p "{\"status\":{\"addresses\":[{\"type\":\"ExternalIP\",\"address\":\"$host_ip\"}]}}" >/dev/null
      did+=("addresses set to ExternalIP $host_ip only")
    fi
    if [ "$overwrite" != "$host_ip" ]; then
      kubectl annotate --overwrite node "$name" "$OVERWRITE=$host_ip" "$OVERWRITE_TIME=$now" >/dev/null
      set_time=$now
      did+=("$OVERWRITE set to $host_ip")
    elif ! [[ $set_time =~ $TIME ]]; then
      # Set by someone else (upstream's script, an older u7s): from now on its time is known.
      kubectl annotate --overwrite node "$name" "$OVERWRITE_TIME=$now" >/dev/null
      set_time=$now
    fi
    set_time=${set_time:0:19}
    if [[ ,$taints == *",$TAINT,"* ]]; then
      kubectl taint nodes "$name" "$TAINT-" >/dev/null
      did+=("taint $TAINT removed")
    fi
    if [ -n "$public" ] && [ "$public" != "$host_ip" ]; then
      pods=$(kubectl get pods -n "$FLANNEL_NS" -l "$FLANNEL_SELECTOR" -o jsonpath="$PODS_JSONPATH" 2>/dev/null || true)
      while IFS='|' read -r pod pod_node deleting starts; do
        [ -n "$pod" ] && [ "$pod_node" = "$name" ] && [ -z "$deleting" ] || continue
        started=$(started_at "$starts")
        if [ -z "$started" ]; then
          [ "$verbose" = 0 ] || did+=("Flannel pod $pod is still starting (left alone: it reads the overwrite when it starts)")
        elif [[ $started > $set_time ]]; then
          [ "$verbose" = 0 ] || did+=("Flannel pod $pod started after the overwrite (left alone: it announces $host_ip)")
        else
          kubectl delete pod -n "$FLANNEL_NS" "$pod" --wait=false >/dev/null
          did+=("Flannel pod $pod restarted (it started at ${started}Z, before $OVERWRITE was set at ${set_time}Z, and announced $public)")
        fi
      done <<<"$pods"
    fi
    if [ ${#did[@]} -gt 0 ]; then
      local line="$name: ${did[0]}" d
      for d in "${did[@]:1}"; do line+="; $d"; done
      echo "$line"
    elif [ "$verbose" = 1 ]; then
      echo "$name: in sync ($host_ip)"
    fi
  done <<<"$nodes"
}

case ${1:---once} in
  --once) sync_once 1 ;;
  --every)
    interval=${2:-10}
    [[ $interval =~ ^[0-9]+$ ]] && [ "$interval" -gt 0 ] || { echo "u7s-sync-external-ip: --every needs seconds" >&2; exit 2; }
    while :; do
      sync_once 0 || echo "u7s-sync-external-ip: sync failed; retrying in ${interval}s" >&2
      sleep "$interval"
    done
    ;;
  *) echo "usage: u7s-sync-external-ip [--once | --every SECONDS]" >&2; exit 2 ;;
esac
