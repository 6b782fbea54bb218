// Events the double's scheduler, kubelet and controllers record, as core/v1 Events (what
// `kubectl describe` and `kubectl get events` show). The real components write events.k8s.io/v1
// Events, which the API server also serves as core/v1 ones with these fields:
// https://kubernetes.io/docs/reference/kubernetes-api/cluster-resources/event-v1/
import type { KubeObject, Store } from "../storage.ts";
import { type Clock, iso, R } from "./objects.ts";

/** EventSource names the component that records an event (default-scheduler, kubelet, daemonset-controller, ...). */
export interface EventSource {
  component: string;
  host?: string;
}

/** recordEvent writes an Event about obj; type is Normal or Warning. */
export function recordEvent(store: Store, clock: Clock, obj: KubeObject, type: "Normal" | "Warning", reason: string, message: string, source: EventSource): void {
  const t = iso(clock());
  const namespace = obj.metadata.namespace ?? "default";
  store.create(R.events, namespace, {
    metadata: { name: `${obj.metadata.name}.${clock().toString(16)}${Math.random().toString(16).slice(2, 6)}`, namespace },
    involvedObject: {
      kind: obj.kind,
      namespace: obj.metadata.namespace,
      name: obj.metadata.name,
      uid: obj.metadata.uid,
      apiVersion: obj.apiVersion,
      resourceVersion: obj.metadata.resourceVersion,
    },
    reason,
    message,
    source,
    firstTimestamp: t,
    lastTimestamp: t,
    count: 1,
    type,
    eventTime: null,
    reportingComponent: source.component,
    reportingInstance: source.host ?? "",
  });
}
