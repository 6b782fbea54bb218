// The kubelets of the API double: one played for every Node, inside the API process. A pod bound to
// a node is accepted (status.startTime, phase Pending, containers waiting in ContainerCreating),
// then after its start delay (controllers/podconfig.ts) Running with Ready=True and each container's
// state.running.startedAt, with the kubelet's Pulled/Created/Started events. Nothing runs: no
// containers, probes, restarts, logs or exec.
//   Pod phases and conditions: https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/
//   Node conditions (Ready, reason KubeletNotReady while the CNI is not initialised):
//   https://kubernetes.io/docs/reference/node/node-status/#condition
// A Flannel pod (namespace kube-flannel, label app=flannel) plays flanneld at its start: it annotates
// its node flannel.alpha.coreos.com/public-ip with the node's public-ip-overwrite annotation as it is
// at that moment, else the node's InternalIP (flanneld reads the overwrite once, at start:
// https://github.com/flannel-io/flannel/blob/master/Documentation/kubernetes.md , "Annotations";
// flannel's own e2e test annotates first, then starts flanneld),
// and its install-cni container writes the CNI config, after which the node's kubelet reports Ready
// (and keeps doing so: the config stays on disk when the pod goes).
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { recordEvent } from "./controllers/events.ts";
import {
  type Clock,
  type Condition,
  type Container,
  type Node,
  type Pod,
  condition,
  internalIp,
  iso,
  isTerminal,
  listNodes,
  listPods,
  R,
  setCondition,
  writeIfChanged,
} from "./controllers/objects.ts";
import { type PodStartConfig, startDelayMs } from "./controllers/podconfig.ts";
import { findResource, type ResourceType } from "./resources.ts";
import { withoutReason } from "./scheduler.ts";
import type { Store } from "./storage.ts";

/** FLANNEL_NAMESPACE and FLANNEL_LABEL pick out the Flannel pods (the chart's namespace in u7s, the chart's app label). */
export const FLANNEL_NAMESPACE = "kube-flannel";
const FLANNEL_LABEL = ["app", "flannel"] as const;
/** The node annotations flanneld (kube subnet manager) reads and writes. */
export const PUBLIC_IP = "flannel.alpha.coreos.com/public-ip";
export const PUBLIC_IP_OVERWRITE = "flannel.alpha.coreos.com/public-ip-overwrite";

/** NOT_READY_MESSAGE is the kubelet's Ready=False message while no CNI config exists. */
export const NOT_READY_MESSAGE = "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized";

const CONFIGMAPS = findResource("", "v1", "configmaps") as ResourceType;

/** KubeletOptions say where the local node's CNI config goes (the node the API double runs in). */
export interface KubeletOptions {
  /** localNode: the node whose files this process can write (the control-plane node, its hostname). */
  localNode?: string;
  /** cniConfDir: where a Flannel pod on localNode writes 10-flannel.conflist (/etc/cni/net.d). */
  cniConfDir?: string;
}

/** isFlannelPod tells whether a pod is one of Flannel's DaemonSet pods. */
export const isFlannelPod = (p: Pod): boolean => p.metadata.namespace === FLANNEL_NAMESPACE && p.metadata.labels?.[FLANNEL_LABEL[0]] === FLANNEL_LABEL[1];

const images = (p: Pod): string[] => [...(p.spec.initContainers ?? []), ...(p.spec.containers ?? [])].map((c) => c.image ?? "");

/** podIp is a pod's IP: the node's for hostNetwork pods, else the lowest free address of the node's podCIDR from .2 on. */
function podIp(pod: Pod, node: Node, pods: Pod[]): string | undefined {
  if (pod.spec.hostNetwork === true) return internalIp(node);
  const m = /^(\d+\.\d+\.\d+)\.0\/24$/.exec(String(node.spec?.podCIDR ?? ""));
  if (!m) return undefined;
  const used = new Set(pods.filter((p) => p.spec.nodeName === node.metadata.name).map((p) => p.status?.podIP));
  for (let i = 2; i < 255; i++) if (!used.has(`${m[1]}.${i}`)) return `${m[1]}.${i}`;
  return undefined;
}

function waiting(c: Container, reason: string) {
  return { name: c.name, image: c.image ?? "", imageID: "", ready: false, restartCount: 0, started: false, state: { waiting: { reason } } };
}

function running(c: Container, at: string, pod: Pod) {
  const id = `containerd://${Bun.hash(`${pod.metadata.uid}/${c.name}`).toString(16).padStart(16, "0")}`;
  return { name: c.name, image: c.image ?? "", imageID: `${c.image ?? ""}@sha256:u7s-double`, containerID: id, ready: true, restartCount: 0, started: true, state: { running: { startedAt: at } } };
}

function completed(c: Container, at: string) {
  return { name: c.name, image: c.image ?? "", imageID: "", ready: true, restartCount: 0, started: false, state: { terminated: { exitCode: 0, reason: "Completed", startedAt: at, finishedAt: at } } };
}

/** Kubelets play the kubelet of every node. */
export class Kubelets {
  /** accepted: when each pod (by uid) was accepted, in ms (startTime has seconds only). */
  private readonly accepted = new Map<string, number>();

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly opts: KubeletOptions = {},
  ) {}

  /** sync advances every bound pod one step and posts each node's Ready condition. */
  sync(cfg: PodStartConfig): void {
    const nodes = new Map(listNodes(this.store).map((n) => [n.metadata.name, n]));
    const pods = listPods(this.store);
    const live = new Set<string>();
    for (const pod of pods) {
      live.add(String(pod.metadata.uid));
      const node = pod.spec.nodeName === undefined ? undefined : nodes.get(pod.spec.nodeName);
      if (!node || isTerminal(pod) || pod.status?.phase === "Running") continue;
      if (pod.status?.startTime === undefined) this.accept(pod, node, pods);
      else this.maybeStart(pod, cfg);
    }
    for (const uid of this.accepted.keys()) if (!live.has(uid)) this.accepted.delete(uid);
    const flannelRuns = new Set(listPods(this.store).filter((p) => isFlannelPod(p) && p.status?.phase === "Running").map((p) => p.spec.nodeName));
    for (const node of listNodes(this.store)) this.postReady(node, flannelRuns.has(node.metadata.name));
  }

  private accept(pod: Pod, node: Node, pods: Pod[]): void {
    const now = this.clock();
    const at = iso(now);
    this.accepted.set(String(pod.metadata.uid), now);
    const hasInit = (pod.spec.initContainers ?? []).length > 0;
    let conds = pod.status?.conditions;
    conds = setCondition(conds, { type: "PodReadyToStartContainers", status: "False", lastProbeTime: null }, at);
    conds = setCondition(conds, { type: "Initialized", status: hasInit ? "False" : "True", lastProbeTime: null, ...(hasInit ? { reason: "ContainersNotInitialized", message: `containers with incomplete status: [${(pod.spec.initContainers ?? []).map((c) => c.name).join(" ")}]` } : {}) }, at);
    const notReady = { status: "False" as const, lastProbeTime: null, reason: "ContainersNotReady", message: `containers with unready status: [${(pod.spec.containers ?? []).map((c) => c.name).join(" ")}]` };
    conds = setCondition(conds, { type: "Ready", ...notReady }, at);
    conds = setCondition(conds, { type: "ContainersReady", ...notReady }, at);
    conds = setCondition(conds, { type: "PodScheduled", status: "True", lastProbeTime: null }, at);
    const ip = podIp(pod, node, pods);
    const status = {
      ...pod.status,
      phase: "Pending",
      conditions: conds,
      hostIP: internalIp(node),
      ...(ip ? { podIP: ip, podIPs: [{ ip }] } : {}),
      startTime: at,
      qosClass: "BestEffort",
      ...(hasInit ? { initContainerStatuses: (pod.spec.initContainers ?? []).map((c) => waiting(c, "PodInitializing")) } : {}),
      containerStatuses: (pod.spec.containers ?? []).map((c) => waiting(c, hasInit ? "PodInitializing" : "ContainerCreating")),
    };
    writeIfChanged(this.store, R.pods, pod, { ...pod, status });
  }

  private maybeStart(pod: Pod, cfg: PodStartConfig): void {
    const delay = startDelayMs(cfg, images(pod));
    if (delay === undefined) return; // neverStart: ContainerCreating for good
    const since = this.accepted.get(String(pod.metadata.uid)) ?? Date.parse(String(pod.status?.startTime));
    const now = this.clock();
    if (now < since + delay) return;
    const at = iso(now);
    const node = this.store.get(R.nodes, undefined, String(pod.spec.nodeName)) as Node | undefined;
    if (!node) return;
    const source = { component: "kubelet", host: node.metadata.name };
    // flanneld announces its public IP as it starts, before the pod is Ready
    if (isFlannelPod(pod)) this.startFlannel(pod, node);
    for (const c of [...(pod.spec.initContainers ?? []), ...(pod.spec.containers ?? [])]) {
      recordEvent(this.store, this.clock, pod, "Normal", "Pulled", `Container image "${c.image ?? ""}" already present on machine`, source);
      recordEvent(this.store, this.clock, pod, "Normal", "Created", `Created container: ${c.name}`, source);
      recordEvent(this.store, this.clock, pod, "Normal", "Started", `Started container ${c.name}`, source);
    }
    let conds: Condition[] = pod.status?.conditions ?? [];
    for (const type of ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"]) {
      conds = setCondition(conds, { type, status: "True", lastProbeTime: null }, at);
    }
    conds = conds.map(withoutReason);
    const current = this.store.get(R.pods, pod.metadata.namespace, pod.metadata.name) as Pod | undefined;
    if (!current) return;
    const hasInit = (pod.spec.initContainers ?? []).length > 0;
    writeIfChanged(this.store, R.pods, current, {
      ...current,
      status: {
        ...current.status,
        phase: "Running",
        conditions: conds,
        ...(hasInit ? { initContainerStatuses: (pod.spec.initContainers ?? []).map((c) => completed(c, at)) } : {}),
        containerStatuses: (pod.spec.containers ?? []).map((c) => running(c, at, pod)),
      },
    });
  }

  /** startFlannel plays flanneld's start: the public-ip annotation, and the CNI config (the node's network becomes ready). */
  private startFlannel(pod: Pod, node: Node): void {
    const annotations = node.metadata.annotations ?? {};
    const publicIp = annotations[PUBLIC_IP_OVERWRITE] || internalIp(node) || "";
    writeIfChanged(this.store, R.nodes, node, {
      ...node,
      metadata: {
        ...node.metadata,
        annotations: {
          ...annotations,
          "flannel.alpha.coreos.com/backend-type": "vxlan",
          "flannel.alpha.coreos.com/kube-subnet-manager": "true",
          [PUBLIC_IP]: publicIp,
        },
      },
    });
    this.writeCniConfig(pod, node.metadata.name);
    const fresh = this.store.get(R.nodes, undefined, node.metadata.name) as Node;
    this.setReady(fresh, true);
  }

  /** writeCniConfig writes the Flannel ConfigMap's cni-conf.json where the install-cni container would, when the node is this process's. */
  private writeCniConfig(pod: Pod, nodeName: string): void {
    const { localNode, cniConfDir } = this.opts;
    if (!cniConfDir || nodeName !== localNode) return;
    const cm = this.store.get(CONFIGMAPS, pod.metadata.namespace, "kube-flannel-cfg");
    const conf = ((cm?.data ?? {}) as Record<string, string>)["cni-conf.json"] ?? '{"name":"cbr0","cniVersion":"0.3.1","plugins":[{"type":"flannel","delegate":{"hairpinMode":true,"isDefaultGateway":true}},{"type":"portmap","capabilities":{"portMappings":true}}]}\n';
    try {
      // a hostPath volume without a type: the runtime creates the directory when it is missing
      mkdirSync(cniConfDir, { recursive: true });
      const file = join(cniConfDir, "10-flannel.conflist");
      writeFileSync(`${file}.tmp`, conf, { mode: 0o644 });
      renameSync(`${file}.tmp`, file);
    } catch (err) {
      console.error(`kube-api-double: writing the CNI config in ${cniConfDir}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /**
   * postReady posts Ready=True for a node with a running Flannel pod (its CNI config exists, also
   * after a re-registration wrote NotReady), NotReady for a node registered without a Ready
   * condition; a Ready node stays Ready (the CNI config stays on disk when the pod goes).
   */
  private postReady(node: Node, flannelRuns: boolean): void {
    if (flannelRuns) this.setReady(node, true);
    else if (condition(node.status?.conditions, "Ready") === undefined) this.setReady(node, false);
  }

  private setReady(node: Node, ready: boolean): void {
    const at = iso(this.clock());
    const c: Condition = ready
      ? { type: "Ready", status: "True", reason: "KubeletReady", message: "kubelet is posting ready status", lastHeartbeatTime: at }
      : { type: "Ready", status: "False", reason: "KubeletNotReady", message: NOT_READY_MESSAGE, lastHeartbeatTime: at };
    const before = condition(node.status?.conditions, "Ready");
    if (before?.status === c.status && before.reason === c.reason) return;
    writeIfChanged(this.store, R.nodes, node, { ...node, status: { ...node.status, conditions: setCondition(node.status?.conditions, c, at) } });
  }
}
