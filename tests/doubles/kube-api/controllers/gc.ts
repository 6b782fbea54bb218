// The garbage collector of the double: an object whose controller owner is gone is deleted (the
// default background cascading deletion), so deleting a Deployment, DaemonSet, StatefulSet or
// ReplicaSet (kubectl delete, helm uninstall) takes its ReplicaSets and pods with it:
// https://kubernetes.io/docs/concepts/architecture/garbage-collection/#owners-dependents
// Events go an hour after they were last seen, as with kube-apiserver's default --event-ttl=1h:
// https://kubernetes.io/docs/reference/command-line-tools-reference/kube-apiserver/
import type { Store } from "../storage.ts";
import { type Clock, type OwnerReference, controllerOf, R } from "./objects.ts";
import { EVERYTHING } from "../selectors.ts";

/** EVENT_TTL_MS is how long an Event is kept after its lastTimestamp. */
export const EVENT_TTL_MS = 3600_000;

const OWNERS: Record<string, (typeof R)[keyof typeof R]> = { ReplicaSet: R.replicasets, DaemonSet: R.daemonsets, StatefulSet: R.statefulsets, Deployment: R.deployments };

/** collectGarbage deletes pods and ReplicaSets whose controller owner no longer exists (or is another object of that name), and expired Events. */
export function collectGarbage(store: Store, clock: Clock): void {
  const now = clock();
  for (const e of store.list(R.events, undefined, EVERYTHING)) {
    const last = Date.parse(String(e.lastTimestamp ?? e.metadata.creationTimestamp));
    if (!Number.isNaN(last) && now - last > EVENT_TTL_MS) store.delete(R.events, e.metadata.namespace, e.metadata.name);
  }
  for (const r of [R.replicasets, R.pods]) {
    for (const o of store.list(r, undefined, EVERYTHING)) {
      const ref: OwnerReference | undefined = controllerOf(o);
      const ownerType = ref && OWNERS[ref.kind];
      if (!ref || !ownerType) continue;
      const owner = store.get(ownerType, o.metadata.namespace, ref.name);
      if (!owner || owner.metadata.uid !== ref.uid) store.delete(r, o.metadata.namespace, o.metadata.name);
    }
  }
}
