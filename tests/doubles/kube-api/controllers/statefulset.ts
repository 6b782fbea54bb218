// The StatefulSet controller of the double: pods NAME-0 .. NAME-(replicas-1) with stable names,
// hostname and subdomain (spec.serviceName). With podManagementPolicy OrderedReady (the default)
// pod N is created only once 0..N-1 are Running and Ready, and scaling down deletes the highest
// ordinal first, one at a time; with Parallel all at once:
// https://kubernetes.io/docs/concepts/workloads/controllers/statefulset/#pod-management-policies
// A changed template replaces the pods from the highest ordinal down, one at a time (RollingUpdate).
// Status carries what `kubectl rollout status` and helm read (ready/current/updated replicas, the
// current and update revisions). volumeClaimTemplates make no PersistentVolumeClaims.
import type { KubeObject, Store } from "../storage.ts";
import { type Pod, type PodTemplate, controllerRef, isRunningAndReady, isTerminal, listPods, ownedBy, R, templateHash, writeStatusIfChanged } from "./objects.ts";
import { replicasOf } from "./replicaset.ts";

const ordinal = (sts: KubeObject, p: Pod): number => {
  const m = new RegExp(`^${sts.metadata.name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}-(\\d+)$`).exec(p.metadata.name);
  return m ? Number(m[1]) : -1;
};

/** syncStatefulSets reconciles every StatefulSet's pods and status. */
export function syncStatefulSets(store: Store): void {
  for (const sts of store.list(R.statefulsets, undefined, { labels: [], fields: [] })) {
    const ns = sts.metadata.namespace;
    const spec = (sts.spec ?? {}) as { template?: PodTemplate; serviceName?: string; podManagementPolicy?: string; updateStrategy?: { type?: string } };
    const template = spec.template ?? {};
    const revision = `${sts.metadata.name}-${templateHash(template)}`;
    const want = replicasOf(sts);
    const parallel = spec.podManagementPolicy === "Parallel";
    const pods = () => ownedBy(listPods(store, ns), sts).filter((p) => !isTerminal(p));
    const byOrdinal = new Map(pods().map((p) => [ordinal(sts, p), p]));
    for (const p of ownedBy(listPods(store, ns), sts).filter(isTerminal)) store.delete(R.pods, ns, p.metadata.name);
    // create the missing ordinals, in order; OrderedReady waits for each to be Running and Ready
    for (let i = 0; i < want; i++) {
      let p = byOrdinal.get(i);
      if (!p) {
        const name = `${sts.metadata.name}-${i}`;
        p = store.create(R.pods, ns, {
          metadata: {
            name,
            namespace: ns,
            labels: { ...template.metadata?.labels, "controller-revision-hash": revision, "statefulset.kubernetes.io/pod-name": name, "apps.kubernetes.io/pod-index": String(i) },
            ...(template.metadata?.annotations ? { annotations: template.metadata.annotations } : {}),
            ownerReferences: [controllerRef(sts)],
          },
          spec: { ...template.spec, hostname: name, ...(spec.serviceName ? { subdomain: spec.serviceName } : {}) },
          status: { phase: "Pending" },
        } as unknown as KubeObject) as Pod;
        byOrdinal.set(i, p);
      }
      if (!parallel && !isRunningAndReady(p)) break;
    }
    const all = pods();
    const allReady = all.every(isRunningAndReady);
    // scale down: the highest ordinal first (one at a time unless Parallel)
    const surplus = all.filter((p) => ordinal(sts, p) >= want || ordinal(sts, p) < 0).sort((a, b) => ordinal(sts, b) - ordinal(sts, a));
    for (const p of parallel ? surplus : allReady ? surplus.slice(0, 1) : []) store.delete(R.pods, ns, p.metadata.name);
    // rolling update: the highest outdated ordinal, while every pod is ready
    const outdated = all.filter((p) => ordinal(sts, p) < want && p.metadata.labels?.["controller-revision-hash"] !== revision).sort((a, b) => ordinal(sts, b) - ordinal(sts, a));
    if (spec.updateStrategy?.type !== "OnDelete" && surplus.length === 0 && allReady && outdated[0]) store.delete(R.pods, ns, outdated[0].metadata.name);
    const now = pods();
    const ready = now.filter(isRunningAndReady).length;
    const updated = now.filter((p) => p.metadata.labels?.["controller-revision-hash"] === revision).length;
    const oldStatus = (sts.status ?? {}) as { currentRevision?: string };
    const currentRevision = updated === want && now.length === want ? revision : (oldStatus.currentRevision ?? revision);
    writeStatusIfChanged(store, R.statefulsets, sts, {
      observedGeneration: sts.metadata.generation,
      replicas: now.length,
      readyReplicas: ready,
      currentReplicas: now.filter((p) => p.metadata.labels?.["controller-revision-hash"] === currentRevision).length,
      updatedReplicas: updated,
      availableReplicas: ready,
      currentRevision,
      updateRevision: revision,
      collisionCount: 0,
    });
  }
}
