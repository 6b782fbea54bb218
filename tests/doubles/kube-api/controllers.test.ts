// Unit tests of the API double's played control plane (scheduler, kubelets, controllers) on an
// in-memory store with a clock stepped by hand. The e2e proof with real kubectl and helm is in
// tests/e2e/doubles.test.ts.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ControlPlane } from "./controllers/manager.ts";
import { R, type Node, type Pod } from "./controllers/objects.ts";
import { NOT_READY_MESSAGE, PUBLIC_IP } from "./kubelet.ts";
import { tolerates, unschedulableMessage } from "./scheduler.ts";
import { EVERYTHING, parseSelector } from "./selectors.ts";
import { type KubeObject, Store } from "./storage.ts";

const CONTROL_PLANE_TAINT = { key: "node-role.kubernetes.io/control-plane", effect: "NoSchedule" };
const TAINT_MESSAGE = "0/1 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.";

let dir: string;
let store: Store;
let now: number;
let cp: ControlPlane;

beforeEach(() => {
  dir = mkdtempSync("/tmp/u7s-unit-kube-api-");
  store = new Store(undefined);
  now = Date.parse("2026-01-01T00:00:00Z");
  cp = new ControlPlane(store, { clock: () => now, podsConfig: join(dir, "pods.json"), localNode: "cp", cniConfDir: dir });
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** advance steps the clock and lets the control plane settle after each step of 100 ms. */
function advance(ms: number): void {
  for (let t = 0; t < ms; t += 100) {
    now += 100;
    cp.settle();
  }
  cp.settle();
}

function addNode(name: string, opts: { taints?: object[]; labels?: Record<string, string>; ready?: boolean; annotations?: Record<string, string> } = {}): void {
  store.create(R.nodes, undefined, {
    metadata: { name, labels: { "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", ...opts.labels }, annotations: opts.annotations },
    spec: { taints: opts.taints ?? [], podCIDR: "10.244.0.0/24" },
    status: {
      addresses: [{ type: "InternalIP", address: `10.0.0.${name.length}` }],
      conditions: opts.ready === undefined ? [] : [{ type: "Ready", status: opts.ready ? "True" : "False", reason: opts.ready ? "KubeletReady" : "KubeletNotReady" }],
    },
  } as unknown as KubeObject);
}

const pods = (ns?: string): Pod[] => store.list(R.pods, ns, EVERYTHING) as Pod[];
const pod = (ns: string, name: string) => store.get(R.pods, ns, name) as Pod | undefined;
const node = (name: string) => store.get(R.nodes, undefined, name) as Node;
const events = (reason: string) => store.list(R.events, undefined, parseSelector(null, null)).filter((e) => e.reason === reason);
const createPod = (name: string, spec: object, ns = "default") =>
  store.create(R.pods, ns, { metadata: { name, namespace: ns }, spec: { containers: [{ name: "c", image: "busybox" }], ...spec } } as unknown as KubeObject);

const FLANNEL_DS = {
  metadata: { name: "kube-flannel-ds", namespace: "kube-flannel" },
  spec: {
    selector: { matchLabels: { app: "flannel" } },
    template: {
      metadata: { labels: { app: "flannel", tier: "node" } },
      spec: {
        hostNetwork: true,
        affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: "kubernetes.io/os", operator: "In", values: ["linux"] }] }] } } },
        tolerations: [{ effect: "NoExecute", operator: "Exists" }, { effect: "NoSchedule", operator: "Exists" }],
        initContainers: [{ name: "install-cni", image: "ghcr.io/flannel-io/flannel:v0.27.4" }],
        containers: [{ name: "kube-flannel", image: "ghcr.io/flannel-io/flannel:v0.27.4" }],
      },
    },
  },
} as unknown as KubeObject;

describe("scheduler", () => {
  test("tolerations: Exists without key matches all, Equal compares values, an effect must match", () => {
    const taint = { key: "k", value: "v", effect: "NoSchedule" };
    expect(tolerates({ operator: "Exists" }, taint)).toBe(true);
    expect(tolerates({ operator: "Exists", effect: "NoExecute" }, taint)).toBe(false);
    expect(tolerates({ key: "k", operator: "Equal", value: "v" }, taint)).toBe(true);
    expect(tolerates({ key: "k", value: "w" }, taint)).toBe(false);
    expect(tolerates({ key: "k", operator: "Exists" }, taint)).toBe(true);
    expect(tolerates({ key: "other", operator: "Exists" }, taint)).toBe(false);
  });

  test("kube-scheduler's message counts and sorts the reasons", () => {
    expect(unschedulableMessage([])).toBe("no nodes available to schedule pods");
    expect(unschedulableMessage(["node(s) had untolerated taint {a: }", "node(s) didn't match Pod's node affinity/selector", "node(s) had untolerated taint {a: }"])).toBe(
      "0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 2 node(s) had untolerated taint {a: }. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.",
    );
  });

  test("a pod without a toleration stays Pending on a tainted node, Unschedulable with the message and one event; untainted, it is bound", () => {
    addNode("cp", { taints: [CONTROL_PLANE_TAINT], ready: true });
    createPod("p", {});
    advance(500);
    const p = pod("default", "p") as Pod;
    expect(p.spec.nodeName).toBeUndefined();
    expect(p.status?.phase).toBe("Pending");
    expect(p.status?.conditions).toEqual([expect.objectContaining({ type: "PodScheduled", status: "False", reason: "Unschedulable", message: TAINT_MESSAGE })]);
    expect(events("FailedScheduling").map((e) => e.message)).toEqual([TAINT_MESSAGE]);
    const n = node("cp");
    store.update(R.nodes, undefined, "cp", { ...n, spec: { ...n.spec, taints: [] } }, "main");
    advance(1500);
    expect(pod("default", "p")?.spec.nodeName).toBe("cp");
    expect(pod("default", "p")?.status?.phase).toBe("Running");
    expect(events("Scheduled").map((e) => e.message)).toEqual(["Successfully assigned default/p to cp"]);
  });

  test("events expire an hour after they were recorded", () => {
    addNode("cp", { taints: [CONTROL_PLANE_TAINT], ready: true });
    createPod("p", {});
    advance(100);
    expect(events("FailedScheduling").length).toBe(1);
    now += 3600_000 + 2000;
    cp.settle();
    expect(events("FailedScheduling")).toEqual([]);
  });

  test("a toleration, nodeSelector and required node affinity pick the node", () => {
    addNode("a", { taints: [CONTROL_PLANE_TAINT], ready: true });
    addNode("bb", { labels: { disk: "ssd" }, ready: true });
    createPod("tol", { tolerations: [{ key: "node-role.kubernetes.io/control-plane", operator: "Exists", effect: "NoSchedule" }], nodeSelector: { "kubernetes.io/hostname": "a" } });
    createPod("sel", { nodeSelector: { disk: "ssd" } });
    createPod("aff", { affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: "disk", operator: "In", values: ["hdd"] }] }] } } } });
    advance(200);
    expect(pod("default", "tol")?.spec.nodeName).toBe("a");
    expect(pod("default", "sel")?.spec.nodeName).toBe("bb");
    expect(pod("default", "aff")?.spec.nodeName).toBeUndefined();
    expect(pod("default", "aff")?.status?.conditions?.[0]?.message).toBe(
      "0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.",
    );
  });

  test("a NoExecute taint evicts a running pod that does not tolerate it", () => {
    addNode("cp", { ready: true });
    createPod("p", {});
    createPod("q", { tolerations: [{ key: "x", operator: "Exists", effect: "NoExecute" }] });
    advance(1500);
    expect(pod("default", "p")?.status?.phase).toBe("Running");
    const n = node("cp");
    store.update(R.nodes, undefined, "cp", { ...n, spec: { ...n.spec, taints: [{ key: "x", effect: "NoExecute" }] } }, "main");
    advance(100);
    expect(pod("default", "p")).toBeUndefined();
    expect(pod("default", "q")?.status?.phase).toBe("Running");
  });
});

describe("kubelet", () => {
  test("a bound pod is ContainerCreating until its start delay (pods.json per image), then Running and Ready with startedAt", () => {
    writeFileSync(join(dir, "pods.json"), JSON.stringify({ defaultStartDelaySeconds: 1, startDelaySeconds: { "slow-image": 3 } }));
    addNode("cp", { ready: true });
    createPod("slow", { containers: [{ name: "c", image: "example.org/slow-image:1" }] });
    advance(200);
    let p = pod("default", "slow") as Pod;
    const accepted = p.status?.startTime as string;
    expect(p.status?.phase).toBe("Pending");
    expect((p.status?.containerStatuses as { state: object }[])[0]?.state).toEqual({ waiting: { reason: "ContainerCreating" } });
    advance(2000);
    expect(pod("default", "slow")?.status?.phase).toBe("Pending");
    advance(1000);
    p = pod("default", "slow") as Pod;
    expect(p.status?.phase).toBe("Running");
    expect(p.status?.conditions?.find((c) => c.type === "Ready")?.status).toBe("True");
    const startedAt = Date.parse((p.status?.containerStatuses as { state: { running: { startedAt: string } } }[])[0]?.state.running.startedAt ?? "");
    expect(startedAt - Date.parse(accepted)).toBeGreaterThanOrEqual(2000);
    expect(p.status?.startTime).toBe(accepted);
    expect(events("Started").map((e) => e.message)).toEqual(["Started container c"]);
    expect(events("Pulled").map((e) => e.message)).toEqual(['Container image "example.org/slow-image:1" already present on machine']);
  });

  test("neverStart keeps a pod in ContainerCreating", () => {
    writeFileSync(join(dir, "pods.json"), JSON.stringify({ neverStart: ["stuck"] }));
    addNode("cp", { ready: true });
    createPod("p", { containers: [{ name: "c", image: "stuck:1" }] });
    advance(5000);
    expect(pod("default", "p")?.status?.phase).toBe("Pending");
  });
});

describe("Flannel and node readiness", () => {
  test("a node is NotReady with the not-ready taint until its Flannel pod runs; the pod announces the overwrite set at its start and writes the CNI config", () => {
    writeFileSync(join(dir, "pods.json"), JSON.stringify({ startDelaySeconds: { flannel: 8 } }));
    addNode("cp", { taints: [CONTROL_PLANE_TAINT] });
    advance(100);
    let n = node("cp");
    expect(n.status?.conditions?.find((c) => c.type === "Ready")).toMatchObject({ status: "False", reason: "KubeletNotReady", message: NOT_READY_MESSAGE });
    expect(n.spec?.taints?.map((t) => `${t.key}:${t.effect}`)).toEqual(["node-role.kubernetes.io/control-plane:NoSchedule", "node.kubernetes.io/not-ready:NoSchedule"]);
    store.create(R.daemonsets, "kube-flannel", structuredClone(FLANNEL_DS));
    advance(1000);
    const [fp] = pods("kube-flannel");
    expect(fp?.spec.nodeName).toBe("cp");
    expect(fp?.status?.phase).toBe("Pending");
    // the overwrite set while the pod is starting is what flanneld reads at its start
    n = node("cp");
    store.update(R.nodes, undefined, "cp", { ...n, metadata: { ...n.metadata, annotations: { "flannel.alpha.coreos.com/public-ip-overwrite": "192.0.2.7" } } }, "main");
    advance(6000);
    expect(node("cp").status?.conditions?.find((c) => c.type === "Ready")?.status).toBe("False");
    expect(existsSync(join(dir, "10-flannel.conflist"))).toBe(false);
    advance(1500);
    n = node("cp");
    expect(pods("kube-flannel")[0]?.status?.phase).toBe("Running");
    expect(n.metadata.annotations?.[PUBLIC_IP]).toBe("192.0.2.7");
    expect(n.status?.conditions?.find((c) => c.type === "Ready")).toMatchObject({ status: "True", reason: "KubeletReady" });
    expect(n.spec?.taints?.map((t) => t.key)).toEqual(["node-role.kubernetes.io/control-plane"]);
    expect(JSON.parse(readFileSync(join(dir, "10-flannel.conflist"), "utf8")).name).toBe("cbr0");
    // an overwrite changed later is not announced (flanneld reads it at start only)
    store.update(R.nodes, undefined, "cp", { ...n, metadata: { ...n.metadata, annotations: { ...n.metadata.annotations, "flannel.alpha.coreos.com/public-ip-overwrite": "192.0.2.8" } } }, "main");
    advance(1000);
    expect(node("cp").metadata.annotations?.[PUBLIC_IP]).toBe("192.0.2.7");
  });

  test("without an overwrite a Flannel pod announces the node's InternalIP; a worker's CNI config is not this process's to write", () => {
    addNode("cp", { ready: false });
    addNode("worker");
    store.create(R.daemonsets, "kube-flannel", structuredClone(FLANNEL_DS));
    advance(1500);
    expect(node("worker").metadata.annotations?.[PUBLIC_IP]).toBe("10.0.0.6");
    expect(node("worker").status?.conditions?.find((c) => c.type === "Ready")?.status).toBe("True");
    expect(readFileSync(join(dir, "10-flannel.conflist"), "utf8")).toContain("cbr0");
  });
});

describe("workload controllers", () => {
  test("DaemonSet: one pod per eligible node, a deleted pod is recreated with a new name, status counts", () => {
    addNode("cp", { taints: [CONTROL_PLANE_TAINT], ready: true });
    addNode("w1", { ready: true });
    addNode("w2", { ready: true, labels: { "kubernetes.io/os": "windows" } });
    store.create(R.daemonsets, "kube-flannel", structuredClone(FLANNEL_DS));
    store.create(R.daemonsets, "default", { metadata: { name: "plain" }, spec: { template: { metadata: { labels: { app: "plain" } }, spec: { containers: [{ name: "c", image: "x" }] } } } } as unknown as KubeObject);
    advance(1500);
    expect(pods("kube-flannel").map((p) => p.spec.nodeName).sort()).toEqual(["cp", "w1"]);
    // no toleration of the control-plane taint: not on cp
    expect(pods("default").map((p) => p.spec.nodeName).sort()).toEqual(["w1", "w2"]);
    const ds = store.get(R.daemonsets, "kube-flannel", "kube-flannel-ds");
    expect(ds?.status).toMatchObject({ desiredNumberScheduled: 2, currentNumberScheduled: 2, numberReady: 2, numberAvailable: 2, updatedNumberScheduled: 2, observedGeneration: 1 });
    const victim = pods("kube-flannel").find((p) => p.spec.nodeName === "w1") as Pod;
    store.delete(R.pods, "kube-flannel", victim.metadata.name);
    advance(100);
    const replacement = pods("kube-flannel").find((p) => p.spec.nodeName === "w1");
    expect(replacement?.metadata.name).toMatch(/^kube-flannel-ds-[a-z0-9]{5}$/);
    expect(replacement?.metadata.name).not.toBe(victim.metadata.name);
    expect(store.get(R.daemonsets, "kube-flannel", "kube-flannel-ds")?.status).toMatchObject({ numberReady: 1 });
    advance(1500);
    expect(store.get(R.daemonsets, "kube-flannel", "kube-flannel-ds")?.status).toMatchObject({ numberReady: 2 });
  });

  test("Deployment -> ReplicaSet -> pods, status complete for rollout status; a deleted Deployment takes its ReplicaSet and pods", () => {
    addNode("cp", { ready: true });
    store.create(R.deployments, "default", { metadata: { name: "web" }, spec: { replicas: 2, selector: { matchLabels: { app: "web" } }, template: { metadata: { labels: { app: "web" } }, spec: { containers: [{ name: "c", image: "nginx" }] } } } } as unknown as KubeObject);
    advance(1500);
    const [rs] = store.list(R.replicasets, "default", EVERYTHING);
    expect(rs?.metadata.name).toMatch(/^web-[bcdfghjklmnpqrstvwxz2456789]{10}$/);
    expect(pods("default").map((p) => p.metadata.name.startsWith(`${rs?.metadata.name}-`) && p.status?.phase)).toEqual(["Running", "Running"]);
    const d = store.get(R.deployments, "default", "web");
    expect(d?.status).toMatchObject({ observedGeneration: 1, replicas: 2, updatedReplicas: 2, readyReplicas: 2, availableReplicas: 2 });
    expect((d?.status as { conditions: { type: string; reason: string }[] }).conditions.map((c) => `${c.type}=${c.reason}`)).toEqual(["Available=MinimumReplicasAvailable", "Progressing=NewReplicaSetAvailable"]);
    store.delete(R.deployments, "default", "web");
    advance(100);
    expect(store.list(R.replicasets, "default", EVERYTHING)).toEqual([]);
    expect(pods("default")).toEqual([]);
  });

  test("StatefulSet OrderedReady: web-0, then web-1 once web-0 is Ready, then web-2", () => {
    addNode("cp", { ready: true });
    store.create(R.statefulsets, "default", { metadata: { name: "web" }, spec: { replicas: 3, serviceName: "web", selector: { matchLabels: { app: "web" } }, template: { metadata: { labels: { app: "web" } }, spec: { containers: [{ name: "c", image: "nginx" }] } } } } as unknown as KubeObject);
    advance(100);
    expect(pods("default").map((p) => p.metadata.name)).toEqual(["web-0"]);
    expect(pods("default")[0]?.spec).toMatchObject({ hostname: "web-0", subdomain: "web" });
    advance(1000);
    expect(pods("default").map((p) => p.metadata.name)).toEqual(["web-0", "web-1"]);
    advance(2200);
    expect(pods("default").map((p) => `${p.metadata.name}=${p.status?.phase}`)).toEqual(["web-0=Running", "web-1=Running", "web-2=Running"]);
    const s = store.get(R.statefulsets, "default", "web")?.status as Record<string, unknown>;
    expect(s).toMatchObject({ replicas: 3, readyReplicas: 3, updatedReplicas: 3, currentReplicas: 3 });
    expect(s.currentRevision).toBe(s.updateRevision);
  });
});
