// The cluster layer's bring-up (`u7s up` after the node, kubeadm-init, kubeadm-join) against the fake
// node: which commands run in the node, in which order, what a failure stops and undoes, and the
// node-side scripts (writeNodeFile, the saved control-plane host) run for real in a temporary directory.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { ENTRYPOINT_PATH, SAVED_HOSTS_FILE, UPSTREAM_HOSTS_FILE } from "../../../lib/assets.ts";
import { bringUpControlPlane, initSteps, joinSteps, waitStep, type ClusterOptions } from "../../../lib/cluster/bringup.ts";
import type { JoinFile } from "../../../lib/cluster/join-file.ts";
import { joinFileFor, saveControlPlaneHost } from "../../../lib/cluster/kubeadm.ts";
import { writeNodeFile, type ClusterEnv } from "../../../lib/cluster/node.ts";
import { READY_POLL } from "../../../lib/cluster/ready.ts";
import { U7sError } from "../../../lib/errors.ts";
import { runSteps } from "../../../lib/steps.ts";
import { FAKE_JOIN_HASH, FakeClusterNode, fakeClusterEnv } from "../../fixtures/fake-cluster-node.ts";
import type { CaptureWriter } from "../../fixtures/fakes.ts";

const NODE = "u7s-node-a";
const ADMIN = "/etc/kubernetes/admin.conf";
const SYNCED = JSON.stringify({
  items: [{ metadata: { name: NODE, labels: { "usernetes/host-ip": "192.0.2.2" }, annotations: { "flannel.alpha.coreos.com/public-ip-overwrite": "192.0.2.2" } }, status: { addresses: [{ type: "ExternalIP", address: "192.0.2.2" }] } }],
});
const JOIN: JoinFile = {
  kind: "u7s-join",
  version: 1,
  controlPlane: { nodeName: "u7s-cp", hostIp: "192.0.2.10", portKubeApiserver: 6443, portFlannel: 8472, nodeSubnet: "10.100.250.0/24" },
  join: { endpoint: "u7s-cp:6443", token: "abcdef.0123456789abcdef", caCertHashes: [FAKE_JOIN_HASH] },
  created: "2026-11-23T10:00:00Z",
};

const NO_WAIT: ClusterOptions = { keepTaint: false, waitSeconds: 0, waitText: "0" };

let dir = "";
let node: FakeClusterNode;
let env: ClusterEnv & { stderr: CaptureWriter };
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "u7s-bringup-"));
  node = new FakeClusterNode(NODE);
  node.state.nodesJson = SYNCED;
  env = await fakeClusterEnv(node);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** first is the index of the first node command starting with these words (-1: none ran). */
const first = (...words: string[]) => node.inNode.findIndex((c) => words.every((w, i) => c.cmd[i] === w));
/** caught runs fn and returns what it threw. */
const caught = async (fn: () => Promise<unknown>) => fn().then(() => undefined, (e: unknown) => e as U7sError);

describe("bringUpControlPlane", () => {
  test("a new node: kubeadm init, external IPs, the sync service, Flannel, then the host's kubeconfig (0600)", async () => {
    const kubeconfig = join(dir, "cfg", "kubeconfig");
    await bringUpControlPlane(env, "none", kubeconfig, false, env.log, NO_WAIT);
    const order = [first("kubeadm", "init"), first("bash", "-c"), first("systemctl", "restart"), first("helm", "upgrade"), first("cat", ADMIN)];
    expect(order.every((i) => i >= 0)).toBe(true);
    expect(order).toEqual([...order].sort((a, b) => a - b));
    expect(statSync(kubeconfig).mode & 0o777).toBe(0o600);
    const k = parse(readFileSync(kubeconfig, "utf8"));
    expect([k["current-context"], k.clusters[0].cluster.server]).toEqual([NODE, "https://127.0.0.1:6443"]);
    // the sync script's report reaches the user
    expect(env.stderr.text).toContain(`   ${NODE}: in sync (192.0.2.2)\n`);
    expect(env.stderr.text).not.toContain("already");
  });

  test("the wait for Ready comes last: a node that never gets Ready fails up with exit 1 after the kubeconfig is written", async () => {
    const kubeconfig = join(dir, "kubeconfig");
    READY_POLL.ms = 1;
    const e = await caught(() => bringUpControlPlane(env, "none", kubeconfig, false, env.log, { keepTaint: false, waitSeconds: 0.001, waitText: "1ms" })).finally(() => void (READY_POLL.ms = 2000));
    expect(e!.exitCode).toBe(1);
    expect(e!.message).toStartWith(`node ${NODE} did not become Ready: node ${NODE} is not Ready after 1ms: waiting for node ${NODE}: no Ready condition yet`);
    expect(existsSync(kubeconfig)).toBe(true);
    expect(node.inNode.findLastIndex((c) => c.cmd.join(" ").startsWith(`kubectl get node ${NODE}`))).toBeGreaterThan(first("cat", ADMIN));
    expect(node.inNode.findLast((c) => c.cmd.join(" ").startsWith(`kubectl get node ${NODE}`))!.env.KUBECONFIG).toBe(ADMIN);
  });

  test("an initialised node: no kubeadm init (it says so); sync service, Flannel and kubeconfig are brought up to date", async () => {
    node.state.files.add(ADMIN);
    const kubeconfig = join(dir, "kubeconfig");
    await bringUpControlPlane(env, "control-plane", kubeconfig, false, env.log, NO_WAIT);
    expect(node.ran("kubeadm")).toBe(false);
    expect(env.stderr.text).toContain(`node ${NODE} is already initialised`);
    const order = [first("bash", "-c"), first("systemctl", "restart"), first("helm", "upgrade"), first("cat", ADMIN)];
    expect(order.every((i) => i >= 0)).toBe(true);
    expect(order).toEqual([...order].sort((a, b) => a - b));
    expect(existsSync(kubeconfig)).toBe(true);
  });

  test("Flannel installed with this port already: not installed again, and the user is told", async () => {
    node.state.files.add(ADMIN);
    node.state.namespaces.add("kube-flannel");
    node.state.flannelPort = 8472;
    await bringUpControlPlane(env, "control-plane", join(dir, "kubeconfig"), false, env.log, NO_WAIT);
    expect(node.ran("helm", "upgrade")).toBe(false);
    expect(env.stderr.text).toContain("already installed with backend port 8472");
  });

  // Each part fails on its own: the error names the part, and nothing after it runs.
  test.each([
    ["kubeadm init", "cannot initialise the control plane with kubeadm", "bash"],
    ["bash -c", "cannot set the nodes' external IPs", "systemctl"],
    ["systemctl", "cannot start the external-IP sync service", "helm"],
    ["helm upgrade", "cannot install Flannel", "cat"],
    [`cat ${ADMIN}`, "cannot write the kubeconfig", undefined],
  ])("a failing %s stops the bring-up with %j", async (failing, doing, next) => {
    node.state.fail.push(failing);
    const kubeconfig = join(dir, "kubeconfig");
    const e = await caught(() => bringUpControlPlane(env, "none", kubeconfig, false, env.log, NO_WAIT));
    expect(e).toBeInstanceOf(U7sError);
    expect(e!.message).toStartWith(`${doing}: command failed (exit code 1): docker exec`);
    if (next) expect(node.ran(next)).toBe(false);
    expect(existsSync(kubeconfig)).toBe(false);
  });
});

test.each([
  ["bash -c", "cannot record the control plane's address in the node", "kubeadm"],
  ["kubeadm join", "cannot join the cluster with kubeadm", undefined],
])("joining: a failing %s stops the join with %j", async (failing, doing, next) => {
  node.state.fail.push(failing);
  const e = await caught(() => runSteps(env.log, joinSteps(env, JOIN, false)));
  expect(e!.message).toStartWith(`${doing}: command failed (exit code 1): docker exec`);
  if (next) expect(node.ran(next)).toBe(false);
});

describe("a failed kubeadm init or join is undone with kubeadm reset", () => {
  const steps = {
    init: () => initSteps(env, false, false),
    join: () => joinSteps(env, JOIN, false),
  };
  test.each(["init", "join"] as const)("%s: the reset runs, and the error is kubeadm %s's", async (what) => {
    node.state.fail.push(`kubeadm ${what}`);
    const e = await caught(() => runSteps(env.log, steps[what]()));
    expect(e!.message).toContain(`kubeadm ${what}`);
    expect(e!.detail).toBe("fake node: kubeadm failed");
    expect(first("kubeadm", "reset", "--force")).toBeGreaterThan(first("kubeadm", what));
  });

  test.each(["init", "join"] as const)("%s: when the reset fails too, the error says what is left to undo by hand", async (what) => {
    node.state.fail.push(`kubeadm ${what}`, "kubeadm reset");
    const e = await caught(() => runSteps(env.log, steps[what]()));
    expect(e!.message).toContain(`kubeadm ${what}`);
    expect(e!.detail).toBe(`fake node: kubeadm failed\ncould not undo (kubeadm reset --force): command failed (exit code 1): docker exec ${NODE} kubeadm reset --force`);
  });

  test("a failure without output of its own: the detail is just what could not be undone", async () => {
    node.recorder.on((argv) => argv.includes("kubeadm") && (argv.includes("init") || argv.includes("reset")), { exitCode: 1 });
    const e = await caught(() => runSteps(env.log, initSteps(env, false, false)));
    expect(e!.detail).toBe(`could not undo (kubeadm reset --force): command failed (exit code 1): docker exec ${NODE} kubeadm reset --force`);
  });
});

describe("waitStep", () => {
  const cni = { type: "Ready", status: "False", reason: "KubeletNotReady", message: "container runtime network not ready: NetworkReady=false" };
  const opts: ClusterOptions = { keepTaint: false, waitSeconds: 0.001, waitText: "1ms" };
  beforeEach(() => {
    node.state.files.add(ADMIN).add("/etc/kubernetes/kubelet.conf");
    node.state.nodesJson = JSON.stringify({ items: [{ metadata: { name: NODE }, status: { conditions: [cni] } }] });
  });
  test("a control plane looks with admin's kubeconfig, a worker with the kubelet's", async () => {
    for (const [role, conf] of [["control-plane", ADMIN], ["worker", "/etc/kubernetes/kubelet.conf"]] as const) {
      await runSteps(env.log, [waitStep(env, opts, role)]).catch(() => undefined);
      expect(node.inNode.at(-1)!.env.KUBECONFIG).toBe(conf);
    }
  });
  test("only networkLater (kubeadm-init) ends the wait for a node that lacks its network alone", async () => {
    expect(await caught(() => runSteps(env.log, [waitStep(env, opts, "control-plane", true)]))).toBeUndefined();
    expect((await caught(() => runSteps(env.log, [waitStep(env, opts, "control-plane")])))!.message).toContain("is not Ready after 1ms");
  });
});

describe("kubeadm's output", () => {
  test.each([
    [true, true],
    [false, undefined],
  ])("with --debug=%p, kubeadm init's and join's output is shown live (stream=%p)", async (debug, stream) => {
    await runSteps(env.log, initSteps(env, debug, false));
    await runSteps(env.log, joinSteps(env, JOIN, debug));
    const opts = (verb: string) => node.recorder.calls.find((c) => c.argv.includes("kubeadm") && c.argv.includes(verb))!.opts;
    expect([opts("init")?.stream, opts("join")?.stream]).toEqual([stream, stream]);
  });
});

describe("joinFileFor", () => {
  beforeEach(() => void node.state.files.add(ADMIN));
  test("output that is not a join command: a plain error quoting it", async () => {
    node.state.printJoinCommand = "W1123 some warning\n";
    const e = await caught(() => joinFileFor(env, "1h", new Date()));
    expect(e).toBeInstanceOf(U7sError);
    expect(e!.message).toContain('"W1123 some warning"');
  });
  test("a join endpoint other than this control plane's: refused, naming both and the settings that move it", async () => {
    node.state.printJoinCommand = `kubeadm join ${NODE}:16443 --token abcdef.0123456789abcdef --discovery-token-ca-cert-hash ${FAKE_JOIN_HASH}\n`;
    const e = await caught(() => joinFileFor(env, "1h", new Date()));
    expect(e).toBeInstanceOf(U7sError);
    for (const endpoint of [`${NODE}:16443`, `${NODE}:6443`]) expect(e!.message).toContain(endpoint);
    expect(e!.hint).toContain("NODE_NAME or PORT_KUBE_APISERVER");
  });
});

/** runForReal runs a node command on this host with bash/sh, with paths of the node replaced by test paths. */
function runForReal(cmd: readonly string[], replace: Record<string, string>, input?: string) {
  const argv = cmd.map((a) => replace[a] ?? a);
  const r = Bun.spawnSync(argv as string[], { stdin: input === undefined ? "ignore" : new TextEncoder().encode(input), stderr: "pipe" });
  return { exitCode: r.exitCode, stderr: r.stderr.toString() };
}

describe("writeNodeFile's script, run for real", () => {
  test("creates the parent (0700) and the file (0600) with the text, atomically, replacing an older file", async () => {
    await writeNodeFile(env, "/etc/u7s/x/file.yaml", "a: 1\n");
    const w = node.inNode.find((c) => c.cmd.includes("/etc/u7s/x/file.yaml"))!;
    const path = join(dir, "etc", "u7s", "file.yaml");
    expect(runForReal(w.cmd, { "/etc/u7s/x/file.yaml": path }, w.input)).toEqual({ exitCode: 0, stderr: "" });
    expect(readFileSync(path, "utf8")).toBe("a: 1\n");
    expect([statSync(path).mode & 0o777, statSync(join(dir, "etc", "u7s")).mode & 0o777]).toEqual([0o600, 0o700]);
    writeFileSync(path, "old", { mode: 0o644 });
    expect(runForReal(w.cmd, { "/etc/u7s/x/file.yaml": path }, "new\n").exitCode).toBe(0);
    expect([readFileSync(path, "utf8"), statSync(path).mode & 0o777, existsSync(`${path}.u7s-tmp`)]).toEqual(["new\n", 0o600, false]);
  });
});

describe("saveControlPlaneHost's script, run for real", () => {
  let hosts = "";
  let upstreamHosts = "";
  let entrypoint = "";
  let ran = "";
  beforeEach(async () => {
    hosts = join(dir, "etc", "u7s", "hosts");
    upstreamHosts = join(dir, "etc", "hosts.u7s");
    ran = join(dir, "entrypoint-ran");
    entrypoint = join(dir, "entrypoint");
    writeFileSync(entrypoint, `#!/bin/sh\ntouch ${ran}\n`, { mode: 0o755 });
    await saveControlPlaneHost(env, JOIN);
  });
  const script = () => node.inNode.find((c) => c.cmd[0] === "bash")!.cmd;
  // every node path is mapped to the temporary directory: the script must never touch this host's /etc
  const save = () => runForReal(script(), { [SAVED_HOSTS_FILE]: hosts, [ENTRYPOINT_PATH]: entrypoint, [UPSTREAM_HOSTS_FILE]: upstreamHosts });

  test("records HOST_IP NODE_NAME (parent created) and has the entrypoint apply it", () => {
    expect(save()).toEqual({ exitCode: 0, stderr: "" });
    expect(readFileSync(hosts, "utf8")).toBe("192.0.2.10 u7s-cp\n");
    expect(existsSync(ran)).toBe(true);
  });

  test("also writes the entry where upstream keeps it, in its join-command's format, over an older one", () => {
    mkdirSync(join(dir, "etc"), { recursive: true });
    writeFileSync(upstreamHosts, "192.0.2.9  u7s-old\n");
    expect(save()).toEqual({ exitCode: 0, stderr: "" });
    expect(readFileSync(upstreamHosts, "utf8")).toBe("192.0.2.10  u7s-cp\n");
    expect(existsSync(`${upstreamHosts}.u7s-tmp`)).toBe(false);
  });

  test("replaces an earlier entry for the same name and keeps every other line", () => {
    mkdirSync(join(dir, "etc", "u7s"), { recursive: true });
    writeFileSync(hosts, "192.0.2.9 u7s-cp\n10.0.0.1 other\n10.0.0.2 u7s-cp alias\n");
    expect(save().exitCode).toBe(0);
    expect(readFileSync(hosts, "utf8")).toBe("10.0.0.1 other\n10.0.0.2 u7s-cp alias\n192.0.2.10 u7s-cp\n");
    expect(existsSync(`${hosts}.u7s-tmp`)).toBe(false);
  });

  test("stops at the first failure: the entrypoint does not run", () => {
    writeFileSync(join(dir, "etc"), "a file where the directory should be");
    expect(save().exitCode).not.toBe(0);
    expect(existsSync(ran)).toBe(false);
  });
});
