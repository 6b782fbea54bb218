// The REAL cluster suite: dist/u7s builds the real node image (kindest/node + CNI + Helm + Flannel,
// which needs registry access), runs real kubeadm, the kubelet and Flannel, and checks that the
// cluster works. It runs only with U7S_CLUSTER_TESTS=1 on a host with registry access (this project's
// CI machines have none: there, the cluster layer is tested against named doubles in tests/e2e).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cleanupNode, loadEnginesEnv, runU7s, type TestEngine } from "../e2e/harness.ts";

const ENABLED = process.env.U7S_CLUSTER_TESTS === "1";
const REASON = "real-cluster tests need registry access and real kubeadm: set U7S_CLUSTER_TESTS=1 on a connected host";
const ENGINE = (process.env.U7S_CLUSTER_ENGINE ?? "docker") as TestEngine;
const CP = { HOSTNAME: "real-cp" };
const WORKER = { HOSTNAME: "real-w", PORT_ETCD: "12379", PORT_KUBELET: "20250", PORT_KUBE_APISERVER: "16443" };
const MINUTES = 60_000;

function show(r: { exitCode: number; stdout: string; stderr: string }): string {
  return `exit ${r.exitCode}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

describe.skipIf(!ENABLED)(`real cluster on rootless ${ENGINE} (${REASON})`, () => {
  const u7s = (env: Record<string, string>, args: string[], timeoutMs = 20 * MINUTES) => runU7s(ENGINE, args, { env, timeoutMs });
  beforeAll(async () => {
    loadEnginesEnv();
    for (const h of [CP, WORKER]) await cleanupNode(ENGINE, `u7s-${h.HOSTNAME}`);
  });
  afterAll(async () => {
    for (const h of [CP, WORKER]) await cleanupNode(ENGINE, `u7s-${h.HOSTNAME}`);
  });

  test("one `u7s up` brings a single-node cluster to Ready, and the smoke test passes", async () => {
    const up = await u7s(CP, ["up"]);
    expect(up.exitCode, show(up)).toBe(0);
    const ready = await u7s(CP, ["kubectl", "wait", "--for=condition=Ready", "nodes", "--all", "--timeout=300s"]);
    expect(ready.exitCode, show(ready)).toBe(0);
    const smoke = await u7s(CP, ["smoke-test"]);
    expect(smoke.exitCode, show(smoke)).toBe(0);
  }, 40 * MINUTES);

  test("down (volumes kept) and up again: the cluster comes back with its state", async () => {
    await u7s(CP, ["kubectl", "create", "configmap", "u7s-persist", "--from-literal=k=v"]);
    expect((await u7s(CP, ["down"])).exitCode).toBe(0);
    const up = await u7s(CP, ["up"]);
    expect(up.exitCode, show(up)).toBe(0);
    expect(up.stderr).toContain("already initialised");
    const cm = await u7s(CP, ["kubectl", "get", "configmap", "u7s-persist", "-o", "jsonpath={.data.k}"]);
    expect(cm.stdout).toBe("v");
  }, 20 * MINUTES);

  test("a second node joins with the join file, becomes Ready, and the smoke test spans both", async () => {
    const jc = await u7s(CP, ["join-command", "-o", "/tmp/u7s-real-join.json"]);
    expect(jc.exitCode, show(jc)).toBe(0);
    const w = await u7s(WORKER, ["up", "--join", "/tmp/u7s-real-join.json"]);
    expect(w.exitCode, show(w)).toBe(0);
    const ready = await u7s(CP, ["kubectl", "wait", "--for=condition=Ready", "nodes", "--all", "--timeout=300s"]);
    expect(ready.exitCode, show(ready)).toBe(0);
    const smoke = await u7s(CP, ["smoke-test"]);
    expect(smoke.exitCode, show(smoke)).toBe(0);
  }, 40 * MINUTES);
});
