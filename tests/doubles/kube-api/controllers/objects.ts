// What the control-plane part of the API double shares: the resources it works on, typed views of
// the fields it reads (Pod, Node, taints, tolerations), owner references, and writes that happen
// only when something changed (a controller that rewrote unchanged objects would wake itself up
// forever through the store's change notifications).
import { findResource, type ResourceType } from "../resources.ts";
import { EVERYTHING } from "../selectors.ts";
import type { KubeObject, Store } from "../storage.ts";

const must = (group: string, plural: string): ResourceType => {
  const r = findResource(group, "v1", plural);
  if (!r) throw new Error(`kube-api-double: no resource ${group}/${plural}`);
  return r;
};

/** R are the resources the controllers read and write. */
export const R = {
  pods: must("", "pods"),
  nodes: must("", "nodes"),
  events: must("", "events"),
  daemonsets: must("apps", "daemonsets"),
  deployments: must("apps", "deployments"),
  replicasets: must("apps", "replicasets"),
  statefulsets: must("apps", "statefulsets"),
} as const;

/** Taint is a core/v1 Taint. */
export interface Taint {
  key: string;
  value?: string;
  effect: "NoSchedule" | "PreferNoSchedule" | "NoExecute" | string;
  timeAdded?: string;
}

/** Toleration is a core/v1 Toleration. */
export interface Toleration {
  key?: string;
  operator?: "Exists" | "Equal";
  value?: string;
  effect?: string;
  tolerationSeconds?: number;
}

/** Condition is a pod or node condition. */
export interface Condition {
  type: string;
  status: "True" | "False" | "Unknown";
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
  [k: string]: unknown;
}

/** Container is the part of a core/v1 Container the double reads. */
export interface Container {
  name: string;
  image?: string;
}

/** PodSpec is the part of a core/v1 PodSpec the double reads. */
export interface PodSpec {
  nodeName?: string;
  nodeSelector?: Record<string, string>;
  affinity?: { nodeAffinity?: { requiredDuringSchedulingIgnoredDuringExecution?: NodeSelector } } & Record<string, unknown>;
  tolerations?: Toleration[];
  containers?: Container[];
  initContainers?: Container[];
  hostNetwork?: boolean;
  [k: string]: unknown;
}

/** NodeSelector is a core/v1 NodeSelector (required node affinity). */
export interface NodeSelector {
  nodeSelectorTerms?: NodeSelectorTerm[];
}

/** NodeSelectorTerm is one ORed term of a NodeSelector. */
export interface NodeSelectorTerm {
  matchExpressions?: SelectorRequirement[];
  matchFields?: SelectorRequirement[];
}

/** SelectorRequirement is a node selector or label selector requirement. */
export interface SelectorRequirement {
  key: string;
  operator: string;
  values?: string[];
}

/** LabelSelector is a meta/v1 LabelSelector (a workload's spec.selector). */
export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: SelectorRequirement[];
}

/** Pod is a stored Pod with typed spec and status. */
export type Pod = KubeObject & { spec: PodSpec; status?: PodStatus };

/** PodStatus is the part of a core/v1 PodStatus the double writes. */
export interface PodStatus {
  phase?: string;
  conditions?: Condition[];
  startTime?: string;
  [k: string]: unknown;
}

/** Node is a stored Node with typed spec and status. */
export type Node = KubeObject & {
  spec?: { taints?: Taint[]; unschedulable?: boolean; podCIDR?: string; [k: string]: unknown };
  status?: { conditions?: Condition[]; addresses?: { type: string; address: string }[]; [k: string]: unknown };
};

/** PodTemplate is a workload's spec.template. */
export interface PodTemplate {
  metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: PodSpec;
}

/** Clock gives the controllers the time (unit tests step it by hand). */
export type Clock = () => number;

/** iso is a Kubernetes timestamp (RFC 3339, seconds). */
export const iso = (ms: number): string => new Date(ms).toISOString().replace(/\.\d+Z$/, "Z");

/** nodes lists every Node. */
export const listNodes = (store: Store): Node[] => store.list(R.nodes, undefined, EVERYTHING) as Node[];

/** listPods lists the pods of one namespace, or of all. */
export const listPods = (store: Store, namespace?: string): Pod[] => store.list(R.pods, namespace, EVERYTHING) as Pod[];

/** condition finds a condition by type. */
export const condition = (conds: Condition[] | undefined, type: string): Condition | undefined => (conds ?? []).find((c) => c.type === type);

/** isRunningAndReady tells whether a pod is Running with condition Ready=True (what controllers count as ready). */
export const isRunningAndReady = (p: Pod): boolean => p.status?.phase === "Running" && condition(p.status.conditions, "Ready")?.status === "True";

/** isTerminal tells whether a pod has ended (Succeeded or Failed). */
export const isTerminal = (p: Pod): boolean => p.status?.phase === "Succeeded" || p.status?.phase === "Failed";

/** nodeIsReady tells whether a node's Ready condition is True. */
export const nodeIsReady = (n: Node): boolean => condition(n.status?.conditions, "Ready")?.status === "True";

/** internalIp is a node's InternalIP address. */
export const internalIp = (n: Node): string | undefined => n.status?.addresses?.find((a) => a.type === "InternalIP")?.address;

/** setCondition returns conditions with one condition set; lastTransitionTime changes only when the status does. */
export function setCondition(conds: Condition[] | undefined, c: Condition, at: string): Condition[] {
  const list = [...(conds ?? [])];
  const i = list.findIndex((x) => x.type === c.type);
  const old = i >= 0 ? list[i] : undefined;
  const next: Condition = { ...old, ...c, lastTransitionTime: old && old.status === c.status ? old.lastTransitionTime : at };
  if (i >= 0) list[i] = next;
  else list.push(next);
  return list;
}

/** OwnerReference is a meta/v1 OwnerReference. */
export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

/** controllerRef is an owner reference marking owner as the managing controller, as the workload controllers set it. */
export function controllerRef(owner: KubeObject): OwnerReference {
  return { apiVersion: String(owner.apiVersion), kind: String(owner.kind), name: owner.metadata.name, uid: String(owner.metadata.uid), controller: true, blockOwnerDeletion: true };
}

/** controllerOf is the owner reference with controller=true of an object. */
export const controllerOf = (o: KubeObject): OwnerReference | undefined =>
  ((o.metadata.ownerReferences ?? []) as OwnerReference[]).find((r) => r.controller === true);

/** ownedBy lists the objects whose controller is owner. */
export const ownedBy = <T extends KubeObject>(objects: T[], owner: KubeObject): T[] => objects.filter((o) => controllerOf(o)?.uid === owner.metadata.uid);

/** matchesLabelSelector evaluates a meta/v1 LabelSelector (an empty selector matches everything). */
export function matchesLabelSelector(sel: LabelSelector | undefined, labels: Record<string, string> | undefined): boolean {
  const l = labels ?? {};
  for (const [k, v] of Object.entries(sel?.matchLabels ?? {})) if (l[k] !== v) return false;
  for (const e of sel?.matchExpressions ?? []) {
    const has = Object.hasOwn(l, e.key);
    const v = l[e.key];
    const ok =
      e.operator === "In" ? has && (e.values ?? []).includes(v as string)
      : e.operator === "NotIn" ? !has || !(e.values ?? []).includes(v as string)
      : e.operator === "Exists" ? has
      : e.operator === "DoesNotExist" ? !has
      : false;
    if (!ok) return false;
  }
  return true;
}

/** templateHash is a short stable hash of a pod template (the pod-template-hash / controller-revision-hash label). */
export function templateHash(template: unknown): string {
  const h = new Bun.CryptoHasher("sha256").update(JSON.stringify(template ?? {})).digest();
  // the alphabet of Kubernetes' SafeEncodeString (no vowels, no look-alikes)
  const alphabet = "bcdfghjklmnpqrstvwxz2456789";
  return [...h.subarray(0, 10)].map((b) => alphabet[b % alphabet.length]).join("");
}

/** same tells whether two JSON values are equal (key order included, as the store writes them back). */
export const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/** writeIfChanged stores an object's new content (all of it) when it differs from what is stored. */
export function writeIfChanged<T extends KubeObject>(store: Store, r: ResourceType, before: T, after: T): T {
  if (same(before, after)) return before;
  return store.update(r, after.metadata.namespace, after.metadata.name, { ...after, metadata: { ...after.metadata, resourceVersion: undefined } } as KubeObject, "all") as T;
}

/** writeStatusIfChanged stores an object's new status when it differs from the stored one. */
export function writeStatusIfChanged(store: Store, r: ResourceType, obj: KubeObject, status: Record<string, unknown>): void {
  if (same(obj.status, status)) return;
  store.update(r, obj.metadata.namespace, obj.metadata.name, { ...obj, status, metadata: { ...obj.metadata, resourceVersion: undefined } } as KubeObject, "status");
}
