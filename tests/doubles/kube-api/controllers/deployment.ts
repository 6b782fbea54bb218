// The Deployment controller of the double: a ReplicaSet NAME-<pod-template-hash> per pod template,
// the newest scaled to spec.replicas, the older ones scaled to 0 once the new one is fully
// available (a rolling update in one step), and the status `kubectl rollout status` and helm's
// readiness check read: observedGeneration, (updated|ready|available|unavailable)Replicas and the
// Available and Progressing conditions (reason NewReplicaSetAvailable when done), as
// https://kubernetes.io/docs/concepts/workloads/controllers/deployment/#deployment-status describes.
// Recreate and maxSurge/maxUnavailable are not played; revision history is not kept.
import type { KubeObject, Store } from "../storage.ts";
import { type Clock, type Condition, type PodTemplate, controllerRef, iso, ownedBy, R, setCondition, templateHash, writeIfChanged, writeStatusIfChanged } from "./objects.ts";
import { replicasOf } from "./replicaset.ts";

type RsStatus = { replicas?: number; readyReplicas?: number; availableReplicas?: number };
const st = (rs: KubeObject) => (rs.status ?? {}) as RsStatus;

/** maxUnavailable resolves a Deployment's rollingUpdate.maxUnavailable (default 25%, rounded down) against its replicas. */
export function maxUnavailable(d: KubeObject): number {
  const v = ((d.spec ?? {}) as { strategy?: { rollingUpdate?: { maxUnavailable?: number | string } } }).strategy?.rollingUpdate?.maxUnavailable ?? "25%";
  const n = replicasOf(d);
  return typeof v === "string" && v.endsWith("%") ? Math.floor((n * Number.parseInt(v, 10)) / 100) : Number(v);
}

/** syncDeployments reconciles every Deployment's ReplicaSets and status. */
export function syncDeployments(store: Store, clock: Clock): void {
  for (const d of store.list(R.deployments, undefined, { labels: [], fields: [] })) {
    const ns = d.metadata.namespace;
    const spec = (d.spec ?? {}) as { template?: PodTemplate; selector?: { matchLabels?: Record<string, string> } & Record<string, unknown> };
    const template = spec.template ?? {};
    const hash = templateHash(template);
    const want = replicasOf(d);
    const owned = ownedBy(store.list(R.replicasets, ns, { labels: [], fields: [] }), d);
    const name = `${d.metadata.name}-${hash}`;
    let fresh = owned.find((rs) => rs.metadata.name === name);
    if (!fresh) {
      fresh = store.create(R.replicasets, ns, {
        metadata: { name, namespace: ns, labels: { ...template.metadata?.labels, "pod-template-hash": hash }, ownerReferences: [controllerRef(d)] },
        spec: {
          replicas: want,
          selector: { ...spec.selector, matchLabels: { ...spec.selector?.matchLabels, "pod-template-hash": hash } },
          template: { ...template, metadata: { ...template.metadata, labels: { ...template.metadata?.labels, "pod-template-hash": hash } } },
        },
      } as unknown as KubeObject);
    } else if (replicasOf(fresh) !== want) {
      fresh = writeIfChanged(store, R.replicasets, fresh, { ...fresh, spec: { ...(fresh.spec as object), replicas: want } });
    }
    const freshDone = (st(fresh).availableReplicas ?? 0) >= want && (st(fresh).replicas ?? 0) === want;
    const old = owned.filter((rs) => rs.metadata.name !== name);
    if (freshDone) {
      for (const rs of old) if (replicasOf(rs) !== 0) writeIfChanged(store, R.replicasets, rs, { ...rs, spec: { ...(rs.spec as object), replicas: 0 } });
    }
    const all = [fresh, ...old];
    const sum = (k: keyof RsStatus) => all.reduce((a, rs) => a + (st(rs)[k] ?? 0), 0);
    const replicas = sum("replicas");
    const available = sum("availableReplicas");
    const updated = st(fresh).replicas ?? 0;
    const at = iso(clock());
    const complete = updated === want && replicas === want && available === want;
    let conditions: Condition[] | undefined = (d.status as { conditions?: Condition[] } | undefined)?.conditions;
    conditions = setCondition(conditions, available >= want - maxUnavailable(d)
      ? { type: "Available", status: "True", reason: "MinimumReplicasAvailable", message: "Deployment has minimum availability.", lastUpdateTime: at }
      : { type: "Available", status: "False", reason: "MinimumReplicasUnavailable", message: "Deployment does not have minimum availability.", lastUpdateTime: at }, at);
    conditions = setCondition(conditions, complete
      ? { type: "Progressing", status: "True", reason: "NewReplicaSetAvailable", message: `ReplicaSet "${name}" has successfully progressed.`, lastUpdateTime: at }
      : { type: "Progressing", status: "True", reason: "ReplicaSetUpdated", message: `ReplicaSet "${name}" is progressing.`, lastUpdateTime: at }, at);
    // lastUpdateTime changes only with the reason (else every pass would rewrite the status)
    const before = (d.status as { conditions?: Condition[] } | undefined)?.conditions ?? [];
    for (const c of conditions) {
      const b = before.find((x) => x.type === c.type);
      if (b && b.reason === c.reason && b.status === c.status) c.lastUpdateTime = b.lastUpdateTime;
    }
    writeStatusIfChanged(store, R.deployments, d, {
      observedGeneration: d.metadata.generation,
      replicas,
      updatedReplicas: updated,
      readyReplicas: sum("readyReplicas"),
      availableReplicas: available,
      ...(replicas - available > 0 ? { unavailableReplicas: replicas - available } : {}),
      conditions,
    });
  }
}
