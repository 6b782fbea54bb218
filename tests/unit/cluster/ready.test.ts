// Waiting for this node to be Ready: what is said while waiting (registration, the CNI, the Flannel
// pod, the node's condition), what a timeout shows, and how kubeadm-init ends before Flannel exists.
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import type { ClusterEnv } from "../../../lib/cluster/node.ts";
import { describePod, EVENT_LINES, isNetworkOnly, lastEvents, lookAtNode, parseNode, parsePods, READY_POLL, readyStep, waitForReady, waitingFor, type Look } from "../../../lib/cluster/ready.ts";
import { U7sError } from "../../../lib/errors.ts";
import { runSteps } from "../../../lib/steps.ts";
import { FakeClusterNode, fakeClusterEnv } from "../../fixtures/fake-cluster-node.ts";
import type { CaptureWriter } from "../../fixtures/fakes.ts";

const NODE = "u7s-node-a";
const ADMIN = "/etc/kubernetes/admin.conf";
const KUBELET = "/etc/kubernetes/kubelet.conf";
const CNI_MESSAGE = "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized";
const POLL = READY_POLL.ms;
beforeAll(() => {
  expect(POLL).toBe(2000); // production looks every 2 s
  READY_POLL.ms = 1;
});
afterAll(() => void (READY_POLL.ms = POLL));

let node: FakeClusterNode;
let env: ClusterEnv & { stderr: CaptureWriter };
beforeEach(async () => {
  node = new FakeClusterNode(NODE);
  node.state.files.add(ADMIN).add(KUBELET);
  env = await fakeClusterEnv(node);
});

const notReady = (reason: string, message: string) => ({ type: "Ready", status: "False", reason, message });
const setNode = (...conditions: object[]) => void (node.state.nodesJson = JSON.stringify({ items: [{ metadata: { name: NODE }, status: { conditions } }] }));
const pod = (name: string, nodeName: string, phase: string, extra: object = {}) => ({ metadata: { name }, spec: { nodeName }, status: { phase, ...extra } });
const setPods = (...items: object[]) => void (node.state.podsJson = JSON.stringify({ items }));
const creating = { containerStatuses: [{ state: { waiting: { reason: "ContainerCreating" } } }] };

describe("waitingFor", () => {
  const look = (over: Partial<Look>): Look => ({ node: { name: NODE, conditions: [], taints: [] }, flannel: undefined, ...over });
  const flannel = parsePods(JSON.stringify({ items: [pod("kube-flannel-ds-x", NODE, "Pending", creating)] }))[0];
  test.each([
    ["not registered", look({ node: undefined, apiSaid: `Error from server (NotFound): nodes "${NODE}" not found` }), `node ${NODE} to register (Error from server (NotFound): nodes "${NODE}" not found)`],
    ["not registered, nothing said", look({ node: undefined }), `node ${NODE} to register`],
    ["no Ready condition yet", look({}), `node ${NODE}: no Ready condition yet`],
    ["no CNI and no Flannel pod", look({ node: { name: NODE, conditions: [notReady("KubeletNotReady", CNI_MESSAGE)], taints: [] } }), `a CNI: no Flannel pod on ${NODE} yet (node: KubeletNotReady: ${CNI_MESSAGE})`],
    ["no CNI, the Flannel pod starting", look({ node: { name: NODE, conditions: [notReady("KubeletNotReady", CNI_MESSAGE)], taints: [] }, flannel }), "the CNI from Flannel pod kube-flannel-ds-x: Pending (ContainerCreating)"],
    ["another reason", look({ node: { name: NODE, conditions: [notReady("KubeletNotReady", "PLEG is not healthy")], taints: [] }, flannel }), `node ${NODE}: KubeletNotReady: PLEG is not healthy`],
    ["Unknown without words", look({ node: { name: NODE, conditions: [{ type: "Ready", status: "Unknown" }], taints: [] } }), `node ${NODE}: Ready=Unknown`],
    ["Ready", look({ node: { name: NODE, conditions: [{ type: "MemoryPressure", status: "False" }, { type: "Ready", status: "True" }], taints: [] } }), undefined],
  ])("%s", (_what, l, want) => {
    expect(waitingFor(l, NODE)).toBe(want);
  });
});

describe("parsePods and describePod", () => {
  test.each([
    [pod("a", NODE, "Pending", creating), "Pending (ContainerCreating)"],
    [pod("a", NODE, "Pending"), "Pending"],
    [{ metadata: { name: "a" } }, "Pending"],
    [pod("a", NODE, "Running", { conditions: [{ type: "Ready", status: "True" }] }), "Running"],
    [pod("a", NODE, "Running", { conditions: [{ type: "Ready", status: "False" }], containerStatuses: [{ state: { running: {} } }, { state: { waiting: { reason: "CrashLoopBackOff" } } }] }), "Running, not Ready yet (CrashLoopBackOff)"],
    [pod("a", NODE, "Running"), "Running, not Ready yet"],
    [pod("a", "", "Pending", { conditions: [{ type: "PodScheduled", status: "False", reason: "Unschedulable", message: "0/1 nodes are available" }] }), "Pending: 0/1 nodes are available"],
    [pod("a", "", "Pending", { conditions: [{ type: "PodScheduled", status: "False", reason: "Unschedulable" }] }), "Pending: Unschedulable"],
    [pod("a", "", "Pending", { conditions: [{ type: "PodScheduled", status: "False", reason: "SchedulerError", message: "x" }] }), "Pending"],
    [pod("a", NODE, "Running", { conditions: [{ type: "PodScheduled", status: "True" }, { type: "Ready", status: "False" }] }), "Running, not Ready yet"],
    [pod("a", NODE, "Pending", { containerStatuses: [{}, { state: { waiting: { reason: "" } } }, { state: { waiting: { reason: "ErrImagePull" } } }] }), "Pending (ErrImagePull)"],
  ])("%j is %j", (p, want) => {
    const [state] = parsePods(JSON.stringify({ items: [p] }));
    expect(describePod(state!)).toBe(want);
  });
  test("no items, and a pod without a node or name, read as such; so does a node without anything", () => {
    expect(parsePods("{}")).toEqual([]);
    expect(parsePods('{"items":[{}]}')).toEqual([{ name: "", nodeName: undefined, phase: "Pending", waiting: undefined, ready: false, unschedulable: undefined }]);
    expect(parseNode("{}")).toEqual({ name: "", conditions: [], taints: [] });
    expect(parsePods(JSON.stringify({ items: [pod("a", "", "Pending")] }))[0]!.nodeName).toBeUndefined();
  });
});

describe("isNetworkOnly", () => {
  const node = (...conditions: object[]) => ({ name: NODE, conditions, taints: [] }) as Look["node"];
  const f = parsePods(JSON.stringify({ items: [pod("f", NODE, "Pending")] }))[0];
  test.each([
    ["not registered", { node: undefined, flannel: undefined }, false],
    ["no Ready condition", { node: node(), flannel: undefined }, false],
    ["no CNI, no Flannel pod", { node: node(notReady("KubeletNotReady", CNI_MESSAGE)), flannel: undefined }, true],
    ["the reason alone says so", { node: node({ type: "Ready", status: "False", reason: "NetworkPluginNotReady" }), flannel: undefined }, true],
    ["no CNI, a Flannel pod coming", { node: node(notReady("KubeletNotReady", CNI_MESSAGE)), flannel: f }, false],
    ["another reason", { node: node(notReady("KubeletNotReady", "PLEG is not healthy")), flannel: undefined }, false],
    ["Ready", { node: node({ type: "Ready", status: "True", message: "cni config uninitialized, once" }), flannel: undefined }, false],
  ])("%s: %p", (_what, look, want) => expect(isNetworkOnly(look as Look)).toBe(want));
});

describe("lookAtNode", () => {
  test("what the API said is its first non-blank line, trimmed; Flannel pods that cannot be listed count as none", async () => {
    node.state.nodesJson = '{"items":[]}';
    node.state.answers.push([`kubectl get node ${NODE}`, { exitCode: 1, stderr: "  \n  The connection to the server was refused  \nmore\n" }]);
    expect(await lookAtNode(env, ADMIN)).toEqual({ node: undefined, apiSaid: "The connection to the server was refused", flannel: undefined });
    node.state.answers.length = 0;
    setNode({ type: "Ready", status: "False" });
    node.state.answers.push(["kubectl get pods", { exitCode: 1, stderr: "forbidden" }]);
    expect(await lookAtNode(env, ADMIN)).toEqual({ node: { name: NODE, conditions: [{ type: "Ready", status: "False" }], taints: [] }, flannel: undefined });
  });
});

describe("waitForReady", () => {
  const opts = { seconds: 60, what: "1m", kubeconfig: ADMIN };
  test("a Ready node: one look with the given kubeconfig, nothing said", async () => {
    setNode({ type: "Ready", status: "True" });
    expect(await waitForReady(env, { ...opts, kubeconfig: KUBELET })).toBe("ready");
    expect(env.stderr.text).toBe("");
    expect(node.inNode.map((c) => [c.cmd.slice(0, 4).join(" "), c.env.KUBECONFIG])).toEqual([
      [`kubectl get node ${NODE}`, KUBELET],
      ["kubectl get pods -n", KUBELET],
    ]);
  });

  test("says each thing it waits for once, as it changes, until the node is Ready; only this node's Flannel pod counts", async () => {
    const cni = notReady("KubeletNotReady", CNI_MESSAGE);
    const nodeWith = (...conditions: object[]) => ({ stdout: JSON.stringify({ metadata: { name: NODE }, status: { conditions } }) });
    const answers = [
      { exitCode: 1, stderr: `Error from server (NotFound): nodes "${NODE}" not found\n` },
      nodeWith(cni),
      nodeWith(cni),
      nodeWith(cni),
      nodeWith({ type: "Ready", status: "True" }),
    ];
    let look = 0;
    node.recorder.on((argv) => argv.includes("get") && argv.includes("node"), () => {
      if (look === 3) setPods(pod("other", "u7s-node-b", "Running"), pod("mine", NODE, "Pending", creating));
      return answers[Math.min(look++, answers.length - 1)]!;
    });
    expect(await waitForReady(env, opts)).toBe("ready");
    expect(env.stderr.text).toBe(
      [
        `   waiting for node ${NODE} to register (Error from server (NotFound): nodes "${NODE}" not found)`,
        `   waiting for a CNI: no Flannel pod on ${NODE} yet (node: KubeletNotReady: ${CNI_MESSAGE})`,
        "   waiting for the CNI from Flannel pod mine: Pending (ContainerCreating)",
        "",
      ].join("\n"),
    );
  });

  test("on timeout: exit 1 with what it waited for, the node's conditions, the Flannel pod and its last events, and a hint", async () => {
    setNode({ type: "MemoryPressure", status: "False", reason: "KubeletHasSufficientMemory" }, { type: "DiskPressure", status: "Unknown" }, notReady("KubeletNotReady", CNI_MESSAGE));
    setPods(pod("kube-flannel-ds-x", NODE, "Pending", creating));
    const ev = (reason: string, at: string, name = "kube-flannel-ds-x", type = "Normal") => ({ type, reason, message: `${reason} message `, involvedObject: { name }, lastTimestamp: at });
    node.state.eventsJson = JSON.stringify({
      items: [ev("Pulled", "2026-12-02T10:00:03Z"), ev("Scheduled", "2026-12-02T10:00:01Z"), ev("Other", "2026-12-02T10:00:09Z", "kube-flannel-ds-y"), { reason: "Started", involvedObject: { name: "kube-flannel-ds-x" }, eventTime: "2026-12-02T10:00:04Z" }, ev("BackOff", "2026-12-02T10:00:05Z", undefined, "Warning")],
    });
    const e = await waitForReady(env, { ...opts, seconds: 0, what: "0.1s" }).then(() => undefined, (err: U7sError) => err);
    expect(e).toBeInstanceOf(U7sError);
    expect(e!.exitCode).toBe(1);
    expect(e!.message).toBe(`node ${NODE} is not Ready after 0.1s: waiting for the CNI from Flannel pod kube-flannel-ds-x: Pending (ContainerCreating)`);
    expect(e!.detail).toBe(
      [
        `conditions of node ${NODE}:`,
        "  MemoryPressure=False KubeletHasSufficientMemory",
        "  DiskPressure=Unknown",
        `  Ready=False KubeletNotReady: ${CNI_MESSAGE}`,
        "Flannel pod kube-flannel-ds-x: Pending (ContainerCreating); last events:",
        "  Normal Scheduled: Scheduled message",
        "  Normal Pulled: Pulled message",
        "  Normal Started: ",
        "  Warning BackOff: BackOff message",
      ].join("\n"),
    );
    expect(e!.hint).toContain(`u7s kubectl describe node ${NODE}`);
    expect(e!.hint).toContain("--wait");
    expect(node.ran("kubectl", "get", "events", "-n", "kube-flannel", "--field-selector", "involvedObject.name=kube-flannel-ds-x", "-o", "json")).toBe(true);
  });

  test("a timeout without a node or Flannel pod says so", async () => {
    let e = await waitForReady(env, { ...opts, seconds: 0 }).then(() => undefined, (err: U7sError) => err);
    expect(e!.detail).toBe("");
    setNode();
    e = await waitForReady(env, { ...opts, seconds: 0 }).then(() => undefined, (err: U7sError) => err);
    expect(e!.detail).toBe(`conditions of node ${NODE}:\n  (none reported yet)\nno Flannel pod on ${NODE}`);
  });

  test("networkLater (kubeadm-init before install-flannel): a node lacking only its CNI, with no Flannel pod, ends the wait", async () => {
    setNode(notReady("KubeletNotReady", CNI_MESSAGE));
    expect(await waitForReady(env, { ...opts, networkLater: true })).toBe("network");
    // with a Flannel pod coming, or for another reason, it waits on
    setPods(pod("f", NODE, "Pending"));
    expect(await waitForReady(env, { ...opts, seconds: 0, networkLater: true }).catch((err: Error) => err.message)).toContain("not Ready");
    setPods();
    setNode(notReady("KubeletNotReady", "PLEG is not healthy"));
    expect(await waitForReady(env, { ...opts, seconds: 0, networkLater: true }).catch((err: Error) => err.message)).toContain("PLEG");
  });
});

describe("lastEvents", () => {
  test(`no events, only the last ${EVENT_LINES}, and events that cannot be read (a worker's kubelet may not list them)`, async () => {
    expect(await lastEvents(env, ADMIN, "p")).toEqual(["(no events)"]);
    node.state.eventsJson = "{}";
    expect(await lastEvents(env, ADMIN, "p")).toEqual(["(no events)"]);
    // without a time an event counts as the oldest; without an object it is not the pod's; without a reason it says none
    node.state.eventsJson = JSON.stringify({ items: [{ type: "Warning", message: "late", involvedObject: { name: "p" }, lastTimestamp: "2026-12-02T10:00:01Z" }, { reason: "Early", involvedObject: { name: "p" } }, { reason: "Nobody's" }] });
    expect(await lastEvents(env, ADMIN, "p")).toEqual(["Normal Early: ", "Warning : late"]);
    node.state.eventsJson = JSON.stringify({ items: [{ reason: "Early", involvedObject: { name: "p" } }, { reason: "Late", involvedObject: { name: "p" }, lastTimestamp: "2026-12-02T10:00:01Z" }] });
    expect(await lastEvents(env, ADMIN, "p")).toEqual(["Normal Early: ", "Normal Late: "]);
    node.state.eventsJson = JSON.stringify({ items: Array.from({ length: 7 }, (_, i) => ({ reason: `R${i}`, message: "m", involvedObject: { name: "p" }, lastTimestamp: `2026-12-02T10:00:0${i}Z` })) });
    expect(await lastEvents(env, ADMIN, "p")).toEqual(["Normal R2: m", "Normal R3: m", "Normal R4: m", "Normal R5: m", "Normal R6: m"]);
    node.state.answers.push(["kubectl get events", { exitCode: 1, stderr: 'Error from server (Forbidden): events is forbidden: User "system:node:u7s-node-a" cannot list resource "events"\n' }]);
    expect(await lastEvents(env, KUBELET, "p")).toEqual(['(its events cannot be read here: Error from server (Forbidden): events is forbidden: User "system:node:u7s-node-a" cannot list resource "events")']);
    node.state.answers.push(["kubectl get events", { exitCode: 3 }]);
    node.state.answers.splice(0, 1);
    expect(await lastEvents(env, KUBELET, "p")).toEqual(["(its events cannot be read here: kubectl exit code 3)"]);
  });
});

describe("readyStep", () => {
  const opts = { seconds: 60, what: "1m", kubeconfig: ADMIN };
  test("its progress line names the node and the wait; --wait 0 skips it", async () => {
    setNode({ type: "Ready", status: "True" });
    await runSteps(env.log, [readyStep(env, opts), readyStep(env, { ...opts, seconds: 0, what: "0" })]);
    expect(env.stderr.text).toMatch(new RegExp(`^ ✓ Waiting for node ${NODE} to be Ready \\(up to 1m\\) \\(\\d+\\.\\ds\\)\\n - Waiting for node ${NODE} to be Ready \\(up to 0\\): not waited for \\(--wait 0\\)\\n$`));
    expect(node.inNode).toHaveLength(2);
  });
  test("a node lacking only its network (networkLater) passes, pointing at install-flannel; a timeout is the step's error", async () => {
    setNode(notReady("KubeletNotReady", CNI_MESSAGE));
    await runSteps(env.log, [readyStep(env, { ...opts, networkLater: true })]);
    expect(env.stderr.text).toContain(`   node ${NODE} is registered; it is Ready once a network add-on runs (next: \`u7s install-flannel\`)\n`);
    const e = await runSteps(env.log, [readyStep(env, { ...opts, seconds: 0.001 })]).then(() => undefined, (err: U7sError) => err);
    expect(e!.message).toStartWith(`node ${NODE} did not become Ready: node ${NODE} is not Ready after 1m: waiting for a CNI`);
  });
});
