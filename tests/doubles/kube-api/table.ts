// The meta.k8s.io/v1 Table form `kubectl get` asks for (Accept: ...;as=Table): the columns of the
// real API's printers for nodes, namespaces and pods, NAME and AGE for everything else.
import type { ResourceType } from "./resources.ts";
import type { KubeObject } from "./storage.ts";

type Column = { name: string; type: string; format?: string; priority?: number; description: string };
type Cells = (o: KubeObject) => unknown[];

/** wantsTable tells whether an Accept header asks for the Table form. */
export function wantsTable(accept: string): boolean {
  return accept.includes("as=Table");
}

/** age renders a creation time the way kubectl does (45s, 3m, 2h, 5d). */
export function age(created: unknown, at = Date.now()): string {
  const t = typeof created === "string" ? Date.parse(created) : Number.NaN;
  if (Number.isNaN(t)) return "<unknown>";
  const s = Math.max(0, Math.floor((at - t) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 3600 * 3) return `${Math.floor(s / 60)}m`;
  if (s < 86400 * 2) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

const NAME: Column = { name: "Name", type: "string", format: "name", description: "Name of the object" };
const AGE: Column = { name: "Age", type: "string", description: "Time since the object was created" };
const meta = (o: KubeObject) => o.metadata;
const status = (o: KubeObject) => (o.status ?? {}) as Record<string, unknown>;

function nodeStatus(o: KubeObject): string {
  const conds = (status(o).conditions ?? []) as { type?: string; status?: string }[];
  const ready = conds.find((c) => c.type === "Ready");
  const s = ready?.status === "True" ? "Ready" : ready?.status === "False" ? "NotReady" : "Unknown";
  return (o.spec as Record<string, unknown> | undefined)?.unschedulable === true ? `${s},SchedulingDisabled` : s;
}

function nodeRoles(o: KubeObject): string {
  const roles = Object.keys(meta(o).labels ?? {})
    .filter((k) => k.startsWith("node-role.kubernetes.io/"))
    .map((k) => k.slice("node-role.kubernetes.io/".length));
  return roles.length > 0 ? roles.sort().join(",") : "<none>";
}

function address(o: KubeObject, type: string): string {
  const list = (status(o).addresses ?? []) as { type?: string; address?: string }[];
  return list.find((a) => a.type === type)?.address ?? "<none>";
}

const nodeInfo = (o: KubeObject, k: string): string => String(((status(o).nodeInfo ?? {}) as Record<string, unknown>)[k] ?? "<unknown>");

type ContainerStatus = { ready?: boolean; restartCount?: number; state?: { waiting?: { reason?: string }; running?: unknown; terminated?: { reason?: string; exitCode?: number } } };

/** podStatus is the STATUS column of `kubectl get pods` (the API's pod printer, without deletion and restarts). */
function podStatus(o: KubeObject): string {
  const s = status(o);
  let reason = String(s.reason ?? s.phase ?? "");
  const init = (s.initContainerStatuses ?? []) as ContainerStatus[];
  const initTotal = (((o.spec ?? {}) as { initContainers?: unknown[] }).initContainers ?? []).length;
  for (const [i, c] of init.entries()) {
    if (c.state?.terminated?.exitCode === 0) continue;
    const w = c.state?.waiting?.reason;
    return w && w !== "PodInitializing" ? `Init:${w}` : `Init:${i}/${initTotal}`;
  }
  for (const c of (s.containerStatuses ?? []) as ContainerStatus[]) {
    if (c.state?.waiting?.reason) reason = c.state.waiting.reason;
    else if (c.state?.terminated?.reason) reason = c.state.terminated.reason;
  }
  return reason;
}

const containers = (o: KubeObject) => (((o.spec ?? {}) as { containers?: unknown[] }).containers ?? []).length;
const containerStatuses = (o: KubeObject) => (status(o).containerStatuses ?? []) as ContainerStatus[];

const PRINTERS: Record<string, { columns: Column[]; cells: Cells }> = {
  nodes: {
    columns: [
      NAME,
      { name: "Status", type: "string", description: "The status of the node" },
      { name: "Roles", type: "string", description: "The roles of the node" },
      AGE,
      { name: "Version", type: "string", description: "Kubelet Version reported by the node." },
      { name: "Internal-IP", type: "string", priority: 1, description: "List of internal IPs." },
      { name: "External-IP", type: "string", priority: 1, description: "List of external IPs." },
      { name: "OS-Image", type: "string", priority: 1, description: "OS image" },
      { name: "Kernel-Version", type: "string", priority: 1, description: "Kernel version" },
      { name: "Container-Runtime", type: "string", priority: 1, description: "Container runtime version" },
    ],
    cells: (o) => [
      meta(o).name,
      nodeStatus(o),
      nodeRoles(o),
      age(meta(o).creationTimestamp),
      nodeInfo(o, "kubeletVersion"),
      address(o, "InternalIP"),
      address(o, "ExternalIP"),
      nodeInfo(o, "osImage"),
      nodeInfo(o, "kernelVersion"),
      nodeInfo(o, "containerRuntimeVersion"),
    ],
  },
  pods: {
    columns: [
      NAME,
      { name: "Ready", type: "string", description: "The aggregate readiness state of this pod for accepting traffic." },
      { name: "Status", type: "string", description: "The aggregate status of the containers in this pod." },
      { name: "Restarts", type: "string", description: "The number of times the containers in this pod have been restarted." },
      AGE,
      { name: "IP", type: "string", priority: 1, description: "IP address allocated to the pod." },
      { name: "Node", type: "string", priority: 1, description: "Name of the node where the pod is placed." },
    ],
    cells: (o) => [
      meta(o).name,
      `${containerStatuses(o).filter((c) => c.ready === true).length}/${containers(o)}`,
      podStatus(o),
      String(containerStatuses(o).reduce((a, c) => a + (c.restartCount ?? 0), 0)),
      age(meta(o).creationTimestamp),
      String(status(o).podIP ?? "<none>"),
      String(((o.spec ?? {}) as { nodeName?: string }).nodeName ?? "<none>"),
    ],
  },
  namespaces: {
    columns: [NAME, { name: "Status", type: "string", description: "The status of the namespace" }, AGE],
    cells: (o) => [meta(o).name, String(status(o).phase ?? ""), age(meta(o).creationTimestamp)],
  },
};

const GENERIC = { columns: [NAME, AGE], cells: (o: KubeObject) => [meta(o).name, age(meta(o).creationTimestamp)] };

/** table renders objects as a Table; includeObject (None, Metadata, Object) says what each row carries. */
export function table(r: ResourceType, objects: KubeObject[], resourceVersion: string, includeObject: string | null): unknown {
  const p = PRINTERS[r.group === "" ? r.plural : ""] ?? GENERIC;
  const object = (o: KubeObject): unknown => {
    if (includeObject === "None") return undefined;
    if (includeObject === "Object") return o;
    return { kind: "PartialObjectMetadata", apiVersion: "meta.k8s.io/v1", metadata: o.metadata };
  };
  return {
    kind: "Table",
    apiVersion: "meta.k8s.io/v1",
    metadata: { resourceVersion },
    columnDefinitions: p.columns.map((c) => ({ format: "", priority: 0, ...c })),
    rows: objects.map((o) => ({ cells: p.cells(o), object: object(o) })),
  };
}
