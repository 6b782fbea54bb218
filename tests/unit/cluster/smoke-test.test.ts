// `u7s smoke-test` against the fake node: the kubectl commands it runs and in which order, the
// manifest it applies, what a failure stops, the cleanup; the client pod's script runs for real with
// a stand-in wget.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { clientScript, DEFAULT_SMOKE_IMAGES, SMOKE_POLL, SMOKE_REPLICAS, smokeManifest, UNSCHEDULABLE_LOOKS } from "../../../lib/cluster/smoke-test.ts";
import { FakeClusterNode } from "../../fixtures/fake-cluster-node.ts";
import { runCli } from "../../fixtures/fakes.ts";

const NS = "u7s-smoke-test";
const PODS = `kubectl -n ${NS} get pods -l app=u7s-smoke -o json`;
const POLL = { ...SMOKE_POLL };
beforeAll(() => void Object.assign(SMOKE_POLL, { pauseMs: 1 }));
afterAll(() => void Object.assign(SMOKE_POLL, POLL));
let node: FakeClusterNode;
const u7s = (argv: string[]) => runCli(argv, { runner: node.recorder, env: { CONTAINER_ENGINE: "docker", HOME: "/nonexistent" } });
beforeEach(() => {
  node = new FakeClusterNode("u7s-node-a");
  node.state.files.add("/etc/kubernetes/admin.conf");
});
/** kubectls are the kubectl commands run in the node, without "kubectl", with their stdin. */
const kubectls = () => node.inNode.filter((c) => c.cmd[0] === "kubectl").map((c) => ({ args: c.cmd.slice(1), input: c.input }));

describe("u7s smoke-test", () => {
  test("waits for the nodes, applies the manifest, waits for the rollout, fetches each replica from a client pod, then deletes the namespace", async () => {
    node.state.answers.push(["kubectl -n u7s-smoke-test run", { stdout: "ok smoke-0.smoke\nok smoke-1.smoke\n\nok smoke-2.smoke\n" }]);
    const r = await u7s(["smoke-test", "--timeout", "60", "--server-image", "registry.local/nginx:1", "--client-image", "registry.local/busybox:1"]);
    expect(r.code, r.stderr).toBe(0);
    const images = { server: "registry.local/nginx:1", client: "registry.local/busybox:1" };
    expect(kubectls()).toEqual([
      { args: ["wait", "--for=condition=Ready", "nodes", "--all", "--timeout=60s"], input: undefined },
      { args: ["apply", "-f", "-"], input: smokeManifest(images) },
      { args: ["-n", NS, "rollout", "status", "statefulset/smoke", "--timeout=5s"], input: undefined },
      {
        args: ["-n", NS, "run", "smoke-client", "--image=registry.local/busybox:1", "--restart=Never", "--rm", "-i", "--quiet", "--command", "--", "sh", "-c", clientScript()],
        input: "", // -i with an empty stdin: the pod's output comes back and the command ends
      },
      { args: ["delete", "namespace", NS, "--ignore-not-found", "--wait=false"], input: undefined },
    ]);
    expect(r.stderr).toContain("   ok smoke-0.smoke\n   ok smoke-1.smoke\n   ok smoke-2.smoke\n");
  });

  test("--keep leaves the namespace; without flags: images from Docker Hub (what an airgapped host must load) and 300 s waits", async () => {
    const r = await u7s(["smoke-test", "--keep"]);
    expect(r.code, r.stderr).toBe(0);
    expect(kubectls().map((k) => k.args[0])).toEqual(["wait", "apply", "-n", "-n"]);
    expect(kubectls()[0]!.args).toContain("--timeout=300s");
    expect(DEFAULT_SMOKE_IMAGES).toEqual({ server: "docker.io/library/nginx:alpine", client: "docker.io/library/busybox:stable" });
    expect(kubectls()[1]!.input).toBe(smokeManifest(DEFAULT_SMOKE_IMAGES));
    expect(kubectls()[3]!.args).toContain(`--image=${DEFAULT_SMOKE_IMAGES.client}`);
  });

  test("a failing step stops the test (exit 1) and the namespace is still deleted", async () => {
    node.state.fail.push("kubectl -n u7s-smoke-test rollout");
    node.state.answers.push([PODS, { stdout: '{"items":[]}' }]);
    const r = await u7s(["smoke-test", "--timeout", "0.05"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("error: Waiting for the StatefulSet to roll out failed: command failed (exit code 1)");
    // its last look waits only as long as is left (at least a second)
    expect(kubectls().filter((k) => k.args[2] === "rollout").at(-1)!.args).toContain("--timeout=1s");
    expect(node.ran("kubectl", "-n", NS, "run")).toBe(false);
    expect(node.ran("kubectl", "delete", "namespace", NS)).toBe(true);
  });

  const unschedulable = (message: string) =>
    JSON.stringify({ items: [{ metadata: { name: "smoke-0" }, status: { phase: "Pending", conditions: [{ type: "PodScheduled", status: "False", reason: "Unschedulable", message }] } }] });
  const TAINTED = "0/1 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.";

  test(`a pod no node can take (Unschedulable on ${UNSCHEDULABLE_LOOKS} looks in a row) fails at once with the scheduler's message; the control-plane taint gets its fix`, async () => {
    node.state.fail.push("kubectl -n u7s-smoke-test rollout");
    node.state.answers.push([PODS, { stdout: unschedulable(TAINTED) }]);
    const r = await u7s(["smoke-test", "--timeout", "300"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`error: Waiting for the StatefulSet to roll out failed: no node can take pod smoke-0: ${TAINTED}\n`);
    expect(r.stderr).toContain("hint: the control plane keeps its taint (made with --control-plane-taint): remove it with `u7s kubectl taint nodes --all node-role.kubernetes.io/control-plane-`");
    expect(kubectls().filter((k) => k.args[2] === "rollout")).toHaveLength(UNSCHEDULABLE_LOOKS);
    expect(node.ran("kubectl", "delete", "namespace", NS)).toBe(true);
  });

  test("another reason gets a pointer to the pod; a pod Unschedulable for a moment only (a lingering not-ready taint) does not fail", async () => {
    node.state.fail.push("kubectl -n u7s-smoke-test rollout");
    node.state.answers.push([PODS, { stdout: unschedulable("0/1 nodes are available: 1 Insufficient cpu.") }]);
    let r = await u7s(["smoke-test"]);
    expect(r.stderr).toContain("hint: see `u7s kubectl -n u7s-smoke-test describe pod smoke-0`");
    node = new FakeClusterNode("u7s-node-a");
    node.state.files.add("/etc/kubernetes/admin.conf");
    let look = 0;
    node.recorder.on((argv) => argv.includes("rollout"), () => (look++ < UNSCHEDULABLE_LOOKS - 1 ? { exitCode: 1, stderr: "error: timed out waiting for the condition" } : { stdout: "statefulset rolling update complete\n" }));
    node.state.answers.push([PODS, { stdout: unschedulable("0/1 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }.") }]);
    node.state.answers.push(["kubectl -n u7s-smoke-test run", { stdout: "ok smoke-0.smoke\n" }]);
    r = await u7s(["smoke-test"]);
    expect(r.code, r.stderr).toBe(0);
  });

  test("an image that is not a reference is refused before anything runs", async () => {
    const r = await u7s(["smoke-test", "--client-image", "busybox; rm -rf /"]);
    expect(r.code).toBe(2);
    expect(node.recorder.calls).toHaveLength(0);
  });
});

describe("smokeManifest", () => {
  const [ns, svc, sts] = parseAllDocuments(smokeManifest({ server: "srv:1", client: "cli:1" })).map((d) => d.toJS());
  test("is a namespace, then a headless Service and a StatefulSet in it", () => {
    expect(ns).toEqual({ apiVersion: "v1", kind: "Namespace", metadata: { name: NS } });
    expect([svc.apiVersion, svc.kind, svc.metadata, sts.apiVersion, sts.kind, sts.metadata]).toEqual(["v1", "Service", { name: "smoke", namespace: NS }, "apps/v1", "StatefulSet", { name: "smoke", namespace: NS }]);
    expect(svc.spec.clusterIP).toBe("None");
  });
  test("the StatefulSet's pods get DNS names under the Service (smoke-N.smoke), serve port 80, and are spread over nodes", () => {
    const labels = sts.spec.template.metadata.labels;
    expect(Object.keys(labels).length).toBeGreaterThan(0);
    expect([sts.spec.serviceName, sts.spec.replicas, sts.spec.selector.matchLabels, svc.spec.selector]).toEqual([svc.metadata.name, SMOKE_REPLICAS, labels, labels]);
    expect(sts.spec.template.spec.containers).toEqual([{ name: "server", image: "srv:1", ports: [{ containerPort: 80 }] }]);
    expect(svc.spec.ports).toEqual([{ name: "http", port: 80 }]);
    expect(sts.spec.template.spec.affinity).toEqual({
      podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 100, podAffinityTerm: { labelSelector: { matchLabels: labels }, topologyKey: "kubernetes.io/hostname" } }] },
    });
  });
});

describe("clientScript, run for real with a stand-in wget", () => {
  let dir = "";
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "u7s-smoke-"));
    // wget logs its arguments and fails for the names listed in $DOWN
    writeFileSync(join(dir, "wget"), `#!/bin/sh\necho "$@" >> ${dir}/calls\nfor d in $DOWN; do case "$*" in *"//$d/"*) exit 1;; esac; done\n`);
    chmodSync(join(dir, "wget"), 0o755);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const run = (down: string) => Bun.spawnSync(["sh", "-c", clientScript()], { env: { PATH: `${dir}:${process.env.PATH}`, DOWN: down } });

  test("fetches each replica by name with a timeout and prints one line each", () => {
    const r = run("");
    expect([r.exitCode, r.stdout.toString()]).toEqual([0, "ok smoke-0.smoke\nok smoke-1.smoke\nok smoke-2.smoke\n"]);
    expect(readFileSync(join(dir, "calls"), "utf8")).toBe(["0", "1", "2"].map((i) => `-q -T 10 -O /dev/null http://smoke-${i}.smoke/\n`).join(""));
  });
  test("stops at the first replica that does not answer, failing", () => {
    const r = run("smoke-1.smoke");
    expect([r.exitCode, r.stdout.toString()]).toEqual([1, "ok smoke-0.smoke\n"]);
  });
});
