// The ReplicaSet controller of the double: keeps spec.replicas (default 1) pods of the template,
// creating ones named NAME-xxxxx and deleting the surplus (not-ready ones first), and reports the
// counts in status, as https://kubernetes.io/docs/concepts/workloads/controllers/replicaset/ says.
// No adoption of orphans by selector, no minReadySeconds.
import type { KubeObject, Store } from "../storage.ts";
import { type Pod, type PodTemplate, controllerRef, isRunningAndReady, isTerminal, listPods, ownedBy, R, writeStatusIfChanged } from "./objects.ts";

/** replicasOf is a workload's spec.replicas (1 when unset, as the API defaults it). */
export const replicasOf = (o: KubeObject): number => Number(((o.spec ?? {}) as { replicas?: number }).replicas ?? 1);

/** syncReplicaSets reconciles every ReplicaSet's pods and status. */
export function syncReplicaSets(store: Store): void {
  for (const rs of store.list(R.replicasets, undefined, { labels: [], fields: [] })) {
    const ns = rs.metadata.namespace;
    const template = ((rs.spec ?? {}) as { template?: PodTemplate }).template ?? {};
    const want = replicasOf(rs);
    let pods = ownedBy(listPods(store, ns), rs).filter((p) => !isTerminal(p));
    for (let i = pods.length; i < want; i++) {
      pods.push(store.create(R.pods, ns, {
        metadata: { generateName: `${rs.metadata.name}-`, namespace: ns, labels: { ...template.metadata?.labels }, ...(template.metadata?.annotations ? { annotations: template.metadata.annotations } : {}), ownerReferences: [controllerRef(rs)] },
        spec: { ...template.spec },
        status: { phase: "Pending" },
      } as unknown as KubeObject) as Pod);
    }
    if (pods.length > want) {
      // unscheduled, then not ready, then the newest go first (the controller's deletion ranking, simplified)
      const rank = (p: Pod) => (p.spec.nodeName === undefined ? 0 : isRunningAndReady(p) ? 2 : 1);
      const order = [...pods].sort((a, b) => rank(a) - rank(b) || String(b.metadata.creationTimestamp).localeCompare(String(a.metadata.creationTimestamp)));
      for (const p of order.slice(0, pods.length - want)) store.delete(R.pods, ns, p.metadata.name);
      pods = ownedBy(listPods(store, ns), rs).filter((p) => !isTerminal(p));
    }
    const ready = pods.filter(isRunningAndReady).length;
    writeStatusIfChanged(store, R.replicasets, rs, {
      replicas: pods.length,
      fullyLabeledReplicas: pods.length,
      readyReplicas: ready,
      availableReplicas: ready,
      observedGeneration: rs.metadata.generation,
    });
  }
}
