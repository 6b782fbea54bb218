#!/bin/bash
# u7s-sync-external-ip: makes every node reachable at its host's address (upstream Usernetes'
# sync-external-ip, made idempotent). For each node with a usernetes/host-ip label (set by the
# u7s entrypoint from HOST_IP):
#   1. status address ExternalIP = the host IP (other addresses are kept);
#   2. annotation flannel.alpha.coreos.com/public-ip-overwrite = the host IP (overwritten when it changed);
#   3. taint node.cloudprovider.kubernetes.io/uninitialized removed;
#   4. a Flannel pod that started before step 2 announces the node's private IP (its node's
#      flannel.alpha.coreos.com/public-ip differs): it is deleted, and its DaemonSet recreates it.
# Runs in the control-plane node with the admin kubeconfig.
#   --once       sync once and print one line per node (what changed, or "in sync")
#   --every N    sync every N seconds forever, printing only changes (the node's systemd service)
set -eu -o pipefail

HOST_IP_LABEL=usernetes/host-ip
OVERWRITE=flannel.alpha.coreos.com/public-ip-overwrite
TAINT=node.cloudprovider.kubernetes.io/uninitialized
FLANNEL_NS=kube-flannel
IPV4='^[0-9]{1,3}(\.[0-9]{1,3}){3}$'

# One line per node, fields separated by "|" (not a tab: `read` merges runs of whitespace
# separators, so an empty field would shift the others): name, host IP label, addresses
# (Type=addr,...), overwrite annotation, public-ip annotation (written by Flannel), taint keys.
NODES_JSONPATH='{range .items[*]}{.metadata.name}{"|"}{.metadata.labels.usernetes/host-ip}{"|"}{range .status.addresses[*]}{.type}={.address},{end}{"|"}{.metadata.annotations.flannel\.alpha\.coreos\.com/public-ip-overwrite}{"|"}{.metadata.annotations.flannel\.alpha\.coreos\.com/public-ip}{"|"}{range .spec.taints[*]}{.key},{end}{"\n"}{end}'
PODS_JSONPATH='{range .items[*]}{.metadata.name}{"|"}{.spec.nodeName}{"\n"}{end}'

# addresses_patch HOST_IP ADDRS: a merge patch of status.addresses with ExternalIP=HOST_IP and the other addresses kept.
addresses_patch() {
  local host_ip=$1 entry list=""
  local -a entries=()
  IFS=, read -r -a entries <<<"$2" || true
  for entry in ${entries[@]+"${entries[@]}"}; do
    [ -n "$entry" ] || continue
    [ "${entry%%=*}" = ExternalIP ] && continue
    list+="{\"type\":\"${entry%%=*}\",\"address\":\"${entry#*=}\"},"
  done
  printf '{"status":{"addresses":[%s{"type":"ExternalIP","address":"%s"}]}}' "$list" "$host_ip"
}

sync_once() { # sync_once VERBOSE
  local verbose=$1 name host_ip addrs overwrite public taints pods pod pod_node
  local -a did
  local nodes
  nodes=$(kubectl get nodes -o jsonpath="$NODES_JSONPATH")
  while IFS='|' read -r name host_ip addrs overwrite public taints; do
    [ -n "$name" ] || continue
    if ! [[ $host_ip =~ $IPV4 ]]; then
      echo "$name: no $HOST_IP_LABEL label (is its node container started by u7s with HOST_IP?); skipped"
      continue
    fi
    did=()
    # Exactly one ExternalIP, equal to the host IP.
    local others=${addrs//"ExternalIP=$host_ip,"/}
    if [[ ,$addrs != *",ExternalIP=$host_ip,"* || ,$others == *",ExternalIP="* ]]; then
      kubectl patch node "$name" --subresource status --type merge -p "$(addresses_patch "$host_ip" "$addrs")" >/dev/null
      did+=("ExternalIP set to $host_ip")
    fi
    if [ "$overwrite" != "$host_ip" ]; then
      kubectl annotate --overwrite node "$name" "$OVERWRITE=$host_ip" >/dev/null
      did+=("$OVERWRITE set to $host_ip")
    fi
    if [[ ,$taints == *",$TAINT,"* ]]; then
      kubectl taint nodes "$name" "$TAINT-" >/dev/null
      did+=("taint $TAINT removed")
    fi
    if [ -n "$public" ] && [ "$public" != "$host_ip" ]; then
      pods=$(kubectl get pods -n "$FLANNEL_NS" -o jsonpath="$PODS_JSONPATH" 2>/dev/null || true)
      while IFS='|' read -r pod pod_node; do
        [ -n "$pod" ] && [ "$pod_node" = "$name" ] || continue
        kubectl delete pod -n "$FLANNEL_NS" "$pod" --wait=false >/dev/null
        did+=("Flannel pod $pod restarted (it announced $public)")
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
