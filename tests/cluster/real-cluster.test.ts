// The REAL cluster suite: dist/u7s builds the real node image (kindest/node + CNI + Helm + Flannel,
// which needs registry access), runs real kubeadm, the kubelet and Flannel, and checks that the
// cluster works. It runs only with U7S_CLUSTER_TESTS=1 on a host with registry access (this project's
// CI machines have none: there, the cluster layer is tested against named doubles in tests/e2e).
//
//   one host:  the test user's rootless engine (tests/setup-engines.sh; U7S_CLUSTER_ENGINE, default docker).
//              A lone control plane must run workloads: `u7s up` removes kubeadm's
//              node-role.kubernetes.io/control-plane:NoSchedule taint unless told to keep it.
//   two hosts: the control plane on test host A, a worker on test host B (tests/setup-hosts.sh
//              --uplink, which gives both hosts a NAT route to the registries), as
//              tests/e2e/two-hosts.test.ts joins them with the doubles. Two nodes on ONE host cannot
//              form a cluster: both would need the same PORT_FLANNEL on the same address.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  cleanupHostNodes,
  cleanupNode,
  copyBetweenHosts,
  eventually,
  loadEnginesEnv,
  loadHostsEnv,
  runOnHost,
  runU7s,
  runU7sOnHost,
  show,
  type CommandResult,
  type HostsEnv,
  type TestEngine,
  type TestHost,
} from "../e2e/harness.ts";

const ENABLED = process.env.U7S_CLUSTER_TESTS === "1";
const REASON = "real-cluster tests need registry access and real kubeadm: set U7S_CLUSTER_TESTS=1 on a connected host";
const ENGINE = (process.env.U7S_CLUSTER_ENGINE ?? "docker") as TestEngine;
const CP = { HOSTNAME: "real-cp" };
const MINUTES = 60_000;
const CONTROL_PLANE_TAINT = "node-role.kubernetes.io/control-plane";

interface NodeView {
  name: string;
  taints: { key: string; effect: string }[];
  externalIp: string | undefined;
}

/** nodesOf reads the nodes' names, taints and ExternalIP through `kubectl get nodes -o json`. */
async function nodesOf(kubectl: Kubectl): Promise<NodeView[]> {
  const r = await kubectl(["get", "nodes", "-o", "json"]);
  expect(r.exitCode, show(r)).toBe(0);
  const items = (JSON.parse(r.stdout) as { items: any[] }).items;
  return items.map((n) => ({
    name: n.metadata.name,
    taints: n.spec.taints ?? [],
    externalIp: (n.status.addresses ?? []).find((a: { type: string }) => a.type === "ExternalIP")?.address,
  }));
}

type Kubectl = (args: string[], input?: string) => Promise<CommandResult>;

/**
 * deploymentRuns applies a plain Deployment (no tolerations, no node selector; its pods spread one
 * per node at most apart, so two nodes both get some) and waits until its pods are Running; it
 * returns the node of each pod.
 */
async function deploymentRuns(kubectl: Kubectl, name: string, replicas: number): Promise<string[]> {
  const manifest = JSON.stringify({
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          topologySpreadConstraints: [{ maxSkew: 1, topologyKey: "kubernetes.io/hostname", whenUnsatisfiable: "DoNotSchedule", labelSelector: { matchLabels: { app: name } } }],
          containers: [{ name: "pause", image: "registry.k8s.io/pause:3.10" }],
        },
      },
    },
  });
  const applied = await kubectl(["apply", "-f", "-"], manifest);
  expect(applied.exitCode, show(applied)).toBe(0);
  const rolled = await kubectl(["rollout", "status", `deployment/${name}`, "--timeout=300s"]);
  expect(rolled.exitCode, show(rolled)).toBe(0);
  const pods = await kubectl(["get", "pods", "-l", `app=${name}`, "-o", 'jsonpath={range .items[*]}{.status.phase} {.spec.nodeName}{"\\n"}{end}']);
  expect(pods.exitCode, show(pods)).toBe(0);
  const lines = pods.stdout.trim().split("\n");
  expect(lines).toHaveLength(replicas);
  for (const line of lines) expect(line).toStartWith("Running ");
  return lines.map((l) => l.split(" ")[1] ?? "");
}

describe.skipIf(!ENABLED)(`real cluster on one host, rootless ${ENGINE} (${REASON})`, () => {
  const u7s = (args: string[], timeoutMs = 20 * MINUTES, input?: string) => runU7s(ENGINE, args, { env: CP, timeoutMs, input });
  const kubectl: Kubectl = (args, input) => u7s(["kubectl", ...args], 10 * MINUTES, input);
  beforeAll(async () => {
    loadEnginesEnv();
    await cleanupNode(ENGINE, `u7s-${CP.HOSTNAME}`);
  });
  afterAll(async () => {
    await cleanupNode(ENGINE, `u7s-${CP.HOSTNAME}`);
  });

  test("one `u7s up`: a Ready control plane without kubeadm's NoSchedule taint runs a plain Deployment, and the smoke test passes", async () => {
    const up = await u7s(["up"]);
    expect(up.exitCode, show(up)).toBe(0);
    const ready = await kubectl(["wait", "--for=condition=Ready", "nodes", "--all", "--timeout=300s"]);
    expect(ready.exitCode, show(ready)).toBe(0);
    const [node] = await nodesOf(kubectl);
    expect(node?.taints.filter((t) => t.key === CONTROL_PLANE_TAINT)).toEqual([]);
    expect(await deploymentRuns(kubectl, "u7s-real-plain", 2)).toEqual([node!.name, node!.name]);
    const smoke = await u7s(["smoke-test"]);
    expect(smoke.exitCode, show(smoke)).toBe(0);
  }, 40 * MINUTES);

  test("down (volumes kept) and up again: the cluster comes back with its state, still schedulable", async () => {
    const cm = await kubectl(["create", "configmap", "u7s-persist", "--from-literal=k=v"]);
    expect(cm.exitCode, show(cm)).toBe(0);
    expect((await u7s(["down"])).exitCode).toBe(0);
    const up = await u7s(["up"]);
    expect(up.exitCode, show(up)).toBe(0);
    expect(up.stderr).toContain("already initialised");
    const got = await kubectl(["get", "configmap", "u7s-persist", "-o", "jsonpath={.data.k}"]);
    expect(got.stdout).toBe("v");
    const [node] = await nodesOf(kubectl);
    expect(node?.taints.filter((t) => t.key === CONTROL_PLANE_TAINT)).toEqual([]);
  }, 20 * MINUTES);
});

describe.skipIf(!ENABLED)(`real cluster across the two test hosts (${REASON}; and tests/setup-hosts.sh --uplink)`, () => {
  let hosts: HostsEnv;
  let cp: TestHost;
  let worker: TestHost;
  const joinFile = (host: TestHost) => `${host.home}/u7s-real-join.json`;
  const on = (host: TestHost, args: string[], timeoutMs = 20 * MINUTES, input?: string) => runU7sOnHost(host, args, { timeoutMs, input });
  const kubectl: Kubectl = (args, input) => on(cp, ["kubectl", ...args], 10 * MINUTES, input);

  beforeAll(async () => {
    hosts = loadHostsEnv();
    if (!hosts.uplink) {
      throw new Error("tests/.work/hosts.env has no U7S_HOSTS_UPLINK=1: the test hosts cannot reach a registry; run `bash tests/setup-hosts.sh --uplink` (as root)");
    }
    [cp, worker] = [hosts.a, hosts.b];
    for (const host of [cp, worker]) await cleanupHostNodes(host);
  }, 5 * MINUTES);
  afterAll(async () => {
    for (const host of [cp, worker]) {
      if (!host) continue;
      await cleanupHostNodes(host);
      await runOnHost(host, ["rm", "-f", joinFile(host)]); // it holds a bootstrap token
    }
  }, 5 * MINUTES);

  test("a worker on host B joins host A's control plane; both Ready with their host's ExternalIP; workloads span both; the smoke test passes", async () => {
    const up = await on(cp, ["up"]);
    expect(up.exitCode, show(up)).toBe(0);
    const jc = await on(cp, ["join-command", "-o", joinFile(cp)]);
    expect(jc.exitCode, show(jc)).toBe(0);
    await copyBetweenHosts(cp, joinFile(cp), worker, joinFile(worker));
    const joined = await on(worker, ["up", "--join", joinFile(worker)]);
    expect(joined.exitCode, show(joined)).toBe(0);

    const ready = await kubectl(["wait", "--for=condition=Ready", "nodes", "--all", "--timeout=600s"]);
    expect(ready.exitCode, show(ready)).toBe(0);
    // the control plane's sync service gives each node its host's address (every few seconds)
    const want = JSON.stringify([[`u7s-${cp.hostname}`, cp.ip], [`u7s-${worker.hostname}`, worker.ip]].sort((x, y) => x[0]!.localeCompare(y[0]!)));
    const nodes = await eventually("both nodes with their host's ExternalIP", async () => {
      const seen = (await nodesOf(kubectl)).sort((x, y) => x.name.localeCompare(y.name));
      return JSON.stringify(seen.map((n) => [n.name, n.externalIp])) === want ? seen : undefined;
    }, 120);
    // the worker's join did not bring the control plane's taint back
    for (const n of nodes) expect(n.taints.filter((t) => t.key === CONTROL_PLANE_TAINT)).toEqual([]);
    // a plain workload runs on both nodes
    const placed = await deploymentRuns(kubectl, "u7s-real-spread", 4);
    expect(new Set(placed).size).toBe(2);

    const smoke = await on(cp, ["smoke-test"]);
    expect(smoke.exitCode, show(smoke)).toBe(0);
  }, 60 * MINUTES);
});
