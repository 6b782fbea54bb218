// The DaemonSet controller of the double: one pod per eligible node, as
// https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/#how-daemon-pods-are-scheduled
// describes it: a node is eligible when it matches the template's nodeSelector / node affinity and
// the pod tolerates its NoSchedule and NoExecute taints (with the tolerations the controller adds,
// "Taints and tolerations" on that page); each pod gets a node affinity on metadata.name of its
// node and the default scheduler binds it. A pod deleted (or failed) is replaced by a new one with a
// new name; a pod on a node that no longer qualifies is deleted; a changed template replaces the
// pods one at a time (RollingUpdate, maxUnavailable 1) while the others are ready. Status carries
// the counts `kubectl rollout status` and helm's readiness check read.
import { matchesNodeAffinity, untoleratedTaint } from "../scheduler.ts";
import type { KubeObject, Store } from "../storage.ts";
import {
  type Node,
  type Pod,
  type PodTemplate,
  type Toleration,
  controllerRef,
  isRunningAndReady,
  isTerminal,
  listNodes,
  listPods,
  ownedBy,
  R,
  templateHash,
  writeStatusIfChanged,
} from "./objects.ts";

/** DAEMON_TOLERATIONS are added to every daemon pod (the page's "Taints and tolerations" table). */
const DAEMON_TOLERATIONS: Toleration[] = [
  { key: "node.kubernetes.io/not-ready", operator: "Exists", effect: "NoExecute" },
  { key: "node.kubernetes.io/unreachable", operator: "Exists", effect: "NoExecute" },
  { key: "node.kubernetes.io/disk-pressure", operator: "Exists", effect: "NoSchedule" },
  { key: "node.kubernetes.io/memory-pressure", operator: "Exists", effect: "NoSchedule" },
  { key: "node.kubernetes.io/pid-pressure", operator: "Exists", effect: "NoSchedule" },
  { key: "node.kubernetes.io/unschedulable", operator: "Exists", effect: "NoSchedule" },
];
/** HOST_NETWORK_TOLERATION is added to daemon pods with hostNetwork. */
const HOST_NETWORK_TOLERATION: Toleration = { key: "node.kubernetes.io/network-unavailable", operator: "Exists", effect: "NoSchedule" };

/** daemonTolerations are a template's tolerations plus those the controller adds (each added once). */
export function daemonTolerations(template: PodTemplate): Toleration[] {
  const own = template.spec?.tolerations ?? [];
  const extra = [...DAEMON_TOLERATIONS, ...(template.spec?.hostNetwork === true ? [HOST_NETWORK_TOLERATION] : [])];
  return [...own, ...extra.filter((e) => !own.some((t) => t.key === e.key && t.effect === e.effect))];
}

/** nodeShouldRunDaemonPod tells whether a node is eligible for a DaemonSet's pod. */
export function nodeShouldRunDaemonPod(template: PodTemplate, node: Node): boolean {
  const spec = { ...template.spec, tolerations: daemonTolerations(template) };
  return matchesNodeAffinity(spec, node) && untoleratedTaint(node.spec?.taints, spec.tolerations) === undefined;
}

/** daemonPodMayStay tells whether a node keeps a daemon pod it runs: NoSchedule taints added later do not evict it, NoExecute ones do. */
export function daemonPodMayStay(template: PodTemplate, node: Node): boolean {
  const spec = { ...template.spec, tolerations: daemonTolerations(template) };
  const noExecute = (node.spec?.taints ?? []).filter((t) => t.effect === "NoExecute");
  return matchesNodeAffinity(spec, node) && untoleratedTaint(noExecute, spec.tolerations) === undefined;
}

/** daemonPodNode is the node a daemon pod is for: where it is bound, else its metadata.name affinity. */
export function daemonPodNode(p: Pod): string | undefined {
  if (p.spec.nodeName) return p.spec.nodeName;
  const terms = p.spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms ?? [];
  return terms.flatMap((t) => t.matchFields ?? []).find((f) => f.key === "metadata.name")?.values?.[0];
}

function podFor(ds: KubeObject, template: PodTemplate, hash: string, node: string): KubeObject {
  const spec = { ...template.spec };
  return {
    metadata: {
      generateName: `${ds.metadata.name}-`,
      namespace: ds.metadata.namespace,
      labels: { ...template.metadata?.labels, "controller-revision-hash": hash, "pod-template-generation": String(ds.metadata.generation ?? 1) },
      ...(template.metadata?.annotations ? { annotations: template.metadata.annotations } : {}),
      ownerReferences: [controllerRef(ds)],
    },
    spec: {
      ...spec,
      tolerations: daemonTolerations(template),
      // the controller pins the pod to its node and leaves the binding to the scheduler
      affinity: {
        ...spec.affinity,
        nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchFields: [{ key: "metadata.name", operator: "In", values: [node] }] }] } },
      },
    },
    status: { phase: "Pending" },
  } as unknown as KubeObject;
}

/** syncDaemonSets reconciles every DaemonSet's pods and status. */
export function syncDaemonSets(store: Store): void {
  const nodes = listNodes(store);
  for (const ds of store.list(R.daemonsets, undefined, { labels: [], fields: [] })) {
    const spec = (ds.spec ?? {}) as { template?: PodTemplate; updateStrategy?: { type?: string } };
    const template = spec.template ?? {};
    const hash = templateHash(template);
    const ns = ds.metadata.namespace;
    let pods = ownedBy(listPods(store, ns), ds);
    // failed pods are replaced (the controller deletes them)
    for (const p of pods.filter(isTerminal)) store.delete(R.pods, ns, p.metadata.name);
    pods = pods.filter((p) => !isTerminal(p));
    const eligible = nodes.filter((n) => nodeShouldRunDaemonPod(template, n));
    const eligibleNames = new Set(eligible.map((n) => n.metadata.name));
    const mayStay = new Set(nodes.filter((n) => daemonPodMayStay(template, n)).map((n) => n.metadata.name));
    const byNode = new Map<string, Pod[]>();
    for (const p of pods) {
      const node = daemonPodNode(p) ?? "";
      byNode.set(node, [...(byNode.get(node) ?? []), p]);
    }
    const kept: Pod[] = [];
    for (const [node, list] of byNode) {
      // a node that no longer qualifies loses its pod; a node with two pods keeps the oldest
      if (!mayStay.has(node)) {
        for (const p of list) store.delete(R.pods, ns, p.metadata.name);
        continue;
      }
      const [first, ...extra] = list.sort((a, b) => String(a.metadata.creationTimestamp).localeCompare(String(b.metadata.creationTimestamp)));
      for (const p of extra) store.delete(R.pods, ns, p.metadata.name);
      if (first) kept.push(first);
    }
    for (const n of eligible) {
      if (!byNode.has(n.metadata.name)) kept.push(store.create(R.pods, ns, podFor(ds, template, hash, n.metadata.name)) as Pod);
    }
    // RollingUpdate: one outdated pod at a time, and only while every other pod is ready
    const outdated = kept.filter((p) => p.metadata.labels?.["controller-revision-hash"] !== hash);
    if (spec.updateStrategy?.type !== "OnDelete" && outdated.length > 0 && kept.every(isRunningAndReady)) {
      const victim = outdated[0] as Pod;
      store.delete(R.pods, ns, victim.metadata.name);
    }
    const current = ownedBy(listPods(store, ns), ds).filter((p) => !isTerminal(p));
    const scheduled = current.filter((p) => p.spec.nodeName !== undefined && eligibleNames.has(p.spec.nodeName));
    const ready = current.filter(isRunningAndReady);
    writeStatusIfChanged(store, R.daemonsets, ds, {
      currentNumberScheduled: scheduled.length,
      desiredNumberScheduled: eligible.length,
      numberAvailable: ready.length,
      numberMisscheduled: current.filter((p) => p.spec.nodeName !== undefined && !eligibleNames.has(p.spec.nodeName)).length,
      numberReady: ready.length,
      ...(eligible.length - ready.length > 0 ? { numberUnavailable: eligible.length - ready.length } : {}),
      observedGeneration: ds.metadata.generation,
      updatedNumberScheduled: scheduled.filter((p) => p.metadata.labels?.["controller-revision-hash"] === hash).length,
    });
  }
}
