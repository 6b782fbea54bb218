// The scheduler of the API double (kube-scheduler's filter phase only): a pod without spec.nodeName
// is bound to a node that passes NodeUnschedulable, NodeName, TaintToleration and NodeAffinity, in
// that order (kube-scheduler's default filter plugins; a node fails at the first one). A pod no
// node takes stays Pending with PodScheduled=False, reason Unschedulable, kube-scheduler's message,
// and a FailedScheduling event. No resources, ports, volumes, (anti-)affinity between pods, scores
// beyond "fewest pods", or preemption.
//   Taints and tolerations: https://kubernetes.io/docs/concepts/scheduling-eviction/taint-and-toleration/
//   nodeSelector and node affinity: https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/
//   Pod conditions (PodScheduled, Unschedulable): https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-conditions
import { recordEvent } from "./controllers/events.ts";
import {
  type Clock,
  type Condition,
  type Node,
  type NodeSelector,
  type Pod,
  type SelectorRequirement,
  type Taint,
  type Toleration,
  iso,
  isTerminal,
  listNodes,
  listPods,
  R,
  setCondition,
  writeIfChanged,
} from "./controllers/objects.ts";
import type { Store } from "./storage.ts";

/**
 * tolerates tells whether a toleration matches a taint: the effects match (an empty effect matches
 * all), and the keys match with Exists, or keys and values with Equal (the default); an empty key
 * with Exists matches every taint.
 */
export function tolerates(t: Toleration, taint: Taint): boolean {
  if (t.effect && t.effect !== taint.effect) return false;
  if (!t.key) return t.operator === "Exists";
  if (t.key !== taint.key) return false;
  return t.operator === "Exists" ? true : (t.value ?? "") === (taint.value ?? "");
}

/** untoleratedTaint is the first of a node's NoSchedule/NoExecute taints no toleration matches (what the TaintToleration filter reports). */
export function untoleratedTaint(taints: Taint[] | undefined, tolerations: Toleration[] | undefined): Taint | undefined {
  return (taints ?? []).find((taint) => (taint.effect === "NoSchedule" || taint.effect === "NoExecute") && !(tolerations ?? []).some((t) => tolerates(t, taint)));
}

function meetsRequirement(r: SelectorRequirement, value: string | undefined): boolean {
  const values = r.values ?? [];
  switch (r.operator) {
    case "In":
      return value !== undefined && values.includes(value);
    case "NotIn":
      return value === undefined || !values.includes(value);
    case "Exists":
      return value !== undefined;
    case "DoesNotExist":
      return value === undefined;
    case "Gt":
    case "Lt": {
      const n = Number.parseInt(value ?? "", 10);
      const want = Number.parseInt(values[0] ?? "", 10);
      if (Number.isNaN(n) || Number.isNaN(want)) return false;
      return r.operator === "Gt" ? n > want : n < want;
    }
  }
  return false;
}

/**
 * matchesNodeSelector evaluates required node affinity: the terms are ORed, the requirements of a
 * term ANDed; an empty term matches nothing; matchFields knows metadata.name only.
 */
export function matchesNodeSelector(sel: NodeSelector, node: Node): boolean {
  const labels = node.metadata.labels ?? {};
  return (sel.nodeSelectorTerms ?? []).some((term) => {
    const exprs = term.matchExpressions ?? [];
    const fields = term.matchFields ?? [];
    if (exprs.length === 0 && fields.length === 0) return false;
    return exprs.every((e) => meetsRequirement(e, Object.hasOwn(labels, e.key) ? labels[e.key] : undefined)) &&
      fields.every((f) => meetsRequirement(f, f.key === "metadata.name" ? node.metadata.name : undefined));
  });
}

/** matchesNodeAffinity tells whether a node has every label of the pod's nodeSelector and meets its required node affinity. */
export function matchesNodeAffinity(spec: Pod["spec"], node: Node): boolean {
  const labels = node.metadata.labels ?? {};
  for (const [k, v] of Object.entries(spec.nodeSelector ?? {})) if (labels[k] !== v) return false;
  const required = spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution;
  return required === undefined || matchesNodeSelector(required, node);
}

/** unfitReason is why a node cannot take a pod, in kube-scheduler's words, or undefined when it can. */
export function unfitReason(spec: Pod["spec"], node: Node): string | undefined {
  if (node.spec?.unschedulable === true && !(spec.tolerations ?? []).some((t) => tolerates(t, { key: "node.kubernetes.io/unschedulable", effect: "NoSchedule" }))) {
    return "node(s) were unschedulable";
  }
  if (spec.nodeName !== undefined && spec.nodeName !== node.metadata.name) return "node(s) didn't match the requested node name";
  const taint = untoleratedTaint(node.spec?.taints, spec.tolerations);
  if (taint) return `node(s) had untolerated taint {${taint.key}: ${taint.value ?? ""}}`;
  if (!matchesNodeAffinity(spec, node)) return "node(s) didn't match Pod's node affinity/selector";
  return undefined;
}

/**
 * unschedulableMessage is kube-scheduler's FitError message: the reasons counted and sorted, then
 * what preemption found (here always "not helpful"), e.g. "0/1 nodes are available: 1 node(s) had
 * untolerated taint {node-role.kubernetes.io/control-plane: }. preemption: 0/1 nodes are available:
 * 1 Preemption is not helpful for scheduling."
 */
export function unschedulableMessage(reasons: string[]): string {
  const n = reasons.length;
  if (n === 0) return "no nodes available to schedule pods";
  const counts = new Map<string, number>();
  for (const r of reasons) counts.set(r, (counts.get(r) ?? 0) + 1);
  const histogram = [...counts].map(([r, c]) => `${c} ${r}`).sort();
  return `0/${n} nodes are available: ${histogram.join(", ")}. preemption: 0/${n} nodes are available: ${n} Preemption is not helpful for scheduling.`;
}

/** withoutReason drops the reason and message of a True condition (an Unschedulable one's no longer apply). */
export function withoutReason(c: Condition): Condition {
  if (c.status !== "True") return c;
  const { reason: _r, message: _m, ...rest } = c;
  return rest;
}

/** schedule binds every unbound pending pod it can, and marks the others Unschedulable (with an event when the message changes). */
export function schedule(store: Store, clock: Clock): void {
  const nodes = listNodes(store);
  const pods = listPods(store);
  const load = new Map<string, number>();
  for (const p of pods) if (p.spec.nodeName) load.set(p.spec.nodeName, (load.get(p.spec.nodeName) ?? 0) + 1);
  for (const pod of pods) {
    // pods for another scheduler are not this one's
    const foreign = pod.spec.schedulerName !== undefined && pod.spec.schedulerName !== "default-scheduler";
    if (pod.spec.nodeName || isTerminal(pod) || foreign) continue;
    const at = iso(clock());
    const fit = nodes.filter((n) => unfitReason(pod.spec, n) === undefined);
    if (fit.length > 0) {
      // the least loaded node (a stand-in for the scoring plugins that spread pods)
      const node = fit.reduce((a, b) => ((load.get(b.metadata.name) ?? 0) < (load.get(a.metadata.name) ?? 0) ? b : a));
      load.set(node.metadata.name, (load.get(node.metadata.name) ?? 0) + 1);
      const conditions = setCondition(pod.status?.conditions, { type: "PodScheduled", status: "True", lastProbeTime: null }, at).map(withoutReason);
      const bound = writeIfChanged(store, R.pods, pod, { ...pod, spec: { ...pod.spec, nodeName: node.metadata.name }, status: { phase: "Pending", ...pod.status, conditions } });
      const ns = pod.metadata.namespace ?? "default";
      recordEvent(store, clock, bound, "Normal", "Scheduled", `Successfully assigned ${ns}/${pod.metadata.name} to ${node.metadata.name}`, { component: "default-scheduler" });
      continue;
    }
    const message = unschedulableMessage(nodes.map((n) => unfitReason(pod.spec, n) as string));
    const before = pod.status?.conditions?.find((c) => c.type === "PodScheduled");
    if (before?.status === "False" && before.message === message) continue;
    const conditions = setCondition(pod.status?.conditions, { type: "PodScheduled", status: "False", reason: "Unschedulable", message, lastProbeTime: null }, at);
    const marked = writeIfChanged(store, R.pods, pod, { ...pod, status: { phase: "Pending", ...pod.status, conditions } });
    recordEvent(store, clock, marked, "Warning", "FailedScheduling", message, { component: "default-scheduler" });
  }
}
