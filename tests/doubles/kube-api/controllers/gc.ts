// The garbage collector of the double: an object whose controller owner is gone is deleted (the
// default background cascading deletion), so deleting a Deployment, DaemonSet, StatefulSet or
// ReplicaSet (kubectl delete, helm uninstall) takes its ReplicaSets and pods with it:
// https://kubernetes.io/docs/concepts/architecture/garbage-collection/#owners-dependents
import type { Store } from "../storage.ts";
import { type OwnerReference, controllerOf, R } from "./objects.ts";
import { EVERYTHING } from "../selectors.ts";

const OWNERS: Record<string, (typeof R)[keyof typeof R]> = { ReplicaSet: R.replicasets, DaemonSet: R.daemonsets, StatefulSet: R.statefulsets, Deployment: R.deployments };

/** collectGarbage deletes pods and ReplicaSets whose controller owner no longer exists (or is another object of that name). */
export function collectGarbage(store: Store): void {
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
