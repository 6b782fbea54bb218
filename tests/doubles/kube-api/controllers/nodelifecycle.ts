// The node lifecycle part of the double's controller-manager:
// - a node whose Ready condition is not True carries node.kubernetes.io/not-ready:NoSchedule, removed
//   once it is Ready ("taint nodes by condition":
//   https://kubernetes.io/docs/concepts/scheduling-eviction/taint-and-toleration/#taint-nodes-by-condition);
// - a bound pod that does not tolerate a NoExecute taint of its node is evicted (deleted) at once, or
//   tolerationSeconds after the taint was added (taint-based evictions:
//   https://kubernetes.io/docs/concepts/scheduling-eviction/taint-and-toleration/#taint-based-evictions);
// - a pod bound to a node that no longer exists is deleted (the pod garbage collector:
//   https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-garbage-collection).
import { tolerates } from "../scheduler.ts";
import type { Store } from "../storage.ts";
import { recordEvent } from "./events.ts";
import { type Clock, type Node, type Taint, iso, listNodes, listPods, nodeIsReady, R, writeIfChanged } from "./objects.ts";

/** NOT_READY_TAINT is the key of the taint a NotReady node carries. */
export const NOT_READY_TAINT = "node.kubernetes.io/not-ready";

/** syncNodeTaints adds or removes each node's not-ready NoSchedule taint after its Ready condition. */
export function syncNodeTaints(store: Store, clock: Clock): void {
  for (const node of listNodes(store)) {
    const taints = node.spec?.taints ?? [];
    const has = taints.some((t) => t.key === NOT_READY_TAINT && t.effect === "NoSchedule");
    const ready = nodeIsReady(node);
    if (ready === !has) continue;
    const next: Taint[] = ready
      ? taints.filter((t) => !(t.key === NOT_READY_TAINT && t.effect === "NoSchedule"))
      : [...taints, { key: NOT_READY_TAINT, effect: "NoSchedule", timeAdded: iso(clock()) }];
    const spec: Node["spec"] = { ...node.spec, taints: next };
    if (next.length === 0) delete spec.taints;
    writeIfChanged(store, R.nodes, node, { ...node, spec } as Node);
  }
}

/** evictPods deletes pods whose node has an untolerated NoExecute taint, and pods bound to nodes that are gone. */
export function evictPods(store: Store, clock: Clock): void {
  const nodes = new Map(listNodes(store).map((n) => [n.metadata.name, n]));
  const now = clock();
  for (const pod of listPods(store)) {
    const name = pod.spec.nodeName;
    if (name === undefined) continue;
    const node = nodes.get(name);
    if (!node) {
      store.delete(R.pods, pod.metadata.namespace, pod.metadata.name);
      continue;
    }
    const evict = (node.spec?.taints ?? []).some((taint) => {
      if (taint.effect !== "NoExecute") return false;
      const t = (pod.spec.tolerations ?? []).find((x) => tolerates(x, taint));
      if (!t) return true;
      if (t.tolerationSeconds === undefined) return false;
      const added = Date.parse(taint.timeAdded ?? "");
      return !Number.isNaN(added) && now >= added + t.tolerationSeconds * 1000;
    });
    if (!evict) continue;
    recordEvent(store, clock, pod, "Normal", "TaintManagerEviction", `Marking for deletion Pod ${pod.metadata.namespace}/${pod.metadata.name}`, { component: "taint-eviction-controller" });
    store.delete(R.pods, pod.metadata.namespace, pod.metadata.name);
  }
}
