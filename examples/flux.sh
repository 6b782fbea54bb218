#!/bin/bash
# A Kubernetes cluster for the length of a Flux batch job (u7s; README "Batch jobs (Slurm, Flux)").
#   flux batch -N2 -t 60m examples/flux.sh
# Needs on every node: u7s, rootless Docker or Podman installed (not running: u7s starts a private one on
# node-local disk), sub-IDs for you. Works offline: the node image comes from a file in the shared home
# (`u7s image save -o ~/u7s-images.tar` once on a host with registry access).
set -euo pipefail
U7S=${U7S:-u7s}
IMAGES=${U7S_IMAGES:-$HOME/u7s-images.tar}
NODES=$(flux getattr size)   # one broker per node of this batch job
# Each flux submit/run below is a job of its own inside this batch job, with its own FLUX_JOB_ID:
# name the cluster after the batch job, so `up --job`, `kubeconfig --job` and `down --job` meet.
U7S_JOB_ID=$(flux getattr jobid 2>/dev/null || echo "flux-$$")
export U7S_JOB_ID

# 1. One u7s per node, in the background: the first node of that job's FLUX_JOB_NODELIST brings up the
#    control plane, every other node joins it; each stays in the foreground until it gets SIGTERM.
CLUSTER=$(flux submit -N "$NODES" --tasks-per-node=1 --output=u7s-{{id}}.log "$U7S" up --job --image-archive "$IMAGES")

# 2. The workload: once every node is Ready (a failed control plane ends the script here, with its reason).
eval "$("$U7S" kubeconfig --job --nodes "$NODES" --timeout 900)"
kubectl get nodes -o wide
# kubectl apply -f my-workload.yaml && kubectl wait --for=condition=complete job/my-workload --timeout=50m

# 3. Cleanup: SIGTERM to every u7s (each removes its node, private engine, scratch directory and, on the
#    control plane, the job's files in the home), then `u7s down --job` on every node for what is left.
flux job kill --signal=SIGTERM "$CLUSTER" || true
flux job attach "$CLUSTER" >/dev/null 2>&1 || true
flux run -N "$NODES" --tasks-per-node=1 "$U7S" down --job
