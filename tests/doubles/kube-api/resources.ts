// The kinds the Kubernetes API double serves: its discovery documents, OpenAPI index and storage
// all derive from this one catalogue.

/** ResourceType is one served resource of one GroupVersion, as discovery describes it. */
export interface ResourceType {
  /** group is "" for the core (legacy /api) group. */
  readonly group: string;
  readonly version: string;
  readonly kind: string;
  /** plural is the resource name in URLs (nodes, daemonsets). */
  readonly plural: string;
  readonly singular: string;
  readonly namespaced: boolean;
  readonly shortNames: readonly string[];
  /** status: the resource has a /status subresource (main writes then leave status alone). */
  readonly status: boolean;
  readonly categories: readonly string[];
}

/** VERBS are what every resource of the double supports. */
export const VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"] as const;

/** STATUS_VERBS are what a /status subresource supports. */
export const STATUS_VERBS = ["get", "patch", "update"] as const;

type Spec = [kind: string, plural: string, namespaced: boolean, shortNames?: string[], status?: boolean];

function groupVersion(group: string, version: string, specs: Spec[]): ResourceType[] {
  return specs.map(([kind, plural, namespaced, shortNames = [], status = false]) => ({
    group,
    version,
    kind,
    plural,
    singular: kind.toLowerCase(),
    namespaced,
    shortNames,
    status,
    categories: ["pods", "services", "daemonsets", "deployments", "statefulsets", "replicasets"].includes(plural) ? ["all"] : [],
  }));
}

/** RESOURCES lists every resource the double serves, grouped by GroupVersion. */
export const RESOURCES: readonly ResourceType[] = [
  ...groupVersion("", "v1", [
    ["Node", "nodes", false, ["no"], true],
    ["Namespace", "namespaces", false, ["ns"], true],
    ["Pod", "pods", true, ["po"], true],
    ["Service", "services", true, ["svc"], true],
    ["Endpoints", "endpoints", true, ["ep"]],
    ["ConfigMap", "configmaps", true, ["cm"]],
    ["Secret", "secrets", true],
    ["ServiceAccount", "serviceaccounts", true, ["sa"]],
    ["Event", "events", true, ["ev"]],
    ["PersistentVolumeClaim", "persistentvolumeclaims", true, ["pvc"], true],
  ]),
  ...groupVersion("apps", "v1", [
    ["DaemonSet", "daemonsets", true, ["ds"], true],
    ["Deployment", "deployments", true, ["deploy"], true],
    ["StatefulSet", "statefulsets", true, ["sts"], true],
    ["ReplicaSet", "replicasets", true, ["rs"], true],
    ["ControllerRevision", "controllerrevisions", true],
  ]),
  ...groupVersion("rbac.authorization.k8s.io", "v1", [
    ["ClusterRole", "clusterroles", false],
    ["ClusterRoleBinding", "clusterrolebindings", false],
    ["Role", "roles", true],
    ["RoleBinding", "rolebindings", true],
  ]),
  ...groupVersion("coordination.k8s.io", "v1", [["Lease", "leases", true]]),
  ...groupVersion("policy", "v1", [["PodDisruptionBudget", "poddisruptionbudgets", true, ["pdb"], true]]),
];

/** apiVersionOf is the apiVersion field of a resource's objects ("v1", "apps/v1"). */
export function apiVersionOf(r: Pick<ResourceType, "group" | "version">): string {
  return r.group === "" ? r.version : `${r.group}/${r.version}`;
}

/** findResource looks a resource up by GroupVersion and plural name. */
export function findResource(group: string, version: string, plural: string): ResourceType | undefined {
  return RESOURCES.find((r) => r.group === group && r.version === version && r.plural === plural);
}

/** findKind looks a resource up by apiVersion and kind (for apply and protobuf bodies). */
export function findKind(apiVersion: string, kind: string): ResourceType | undefined {
  return RESOURCES.find((r) => apiVersionOf(r) === apiVersion && r.kind === kind);
}

/** GroupVersion is one served GroupVersion with its resources. */
export interface GroupVersion {
  readonly group: string;
  readonly version: string;
  readonly resources: readonly ResourceType[];
}

/** groupVersions lists the served GroupVersions, core first, in catalogue order. */
export function groupVersions(): GroupVersion[] {
  const out: GroupVersion[] = [];
  for (const r of RESOURCES) {
    let gv = out.find((g) => g.group === r.group && g.version === r.version);
    if (!gv) {
      gv = { group: r.group, version: r.version, resources: [] };
      out.push(gv);
    }
    (gv.resources as ResourceType[]).push(r);
  }
  return out;
}
