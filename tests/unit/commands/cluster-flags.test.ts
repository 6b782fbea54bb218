// --wait and --control-plane-taint (U7S_CONTROL_PLANE_TAINT) of up, kubeadm-init and kubeadm-join:
// parsed before anything runs, and what each command does with them (against the fake node).
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CONTROL_PLANE_TAINT } from "../../../lib/cluster/control-plane.ts";
import { clusterOptions, parseDuration } from "../../../lib/commands/_cluster-flags.ts";
import type { Args } from "../../../lib/commands/_types.ts";
import { UsageError } from "../../../lib/errors.ts";
import { FAKE_JOIN_HASH, FakeClusterNode } from "../../fixtures/fake-cluster-node.ts";
import { runCli } from "../../fixtures/fakes.ts";

const args = (values: Args["values"]): Args => ({ values, positionals: [], rest: [] });

describe("parseDuration", () => {
  test.each([
    ["0", 0],
    ["90", 90],
    ["1.5", 1.5],
    ["90s", 90],
    ["5m", 300],
    ["1h30m", 5400],
    ["2m0.5s", 120.5],
    ["1h", 3600],
  ])("%s is %p seconds", (text, seconds) => expect(parseDuration(text)).toBe(seconds));
  test.each(["", "5x", "m", "-1", "5 m", "1m-2s", "1.m", "5mm"])("%j is not a duration", (text) => expect(parseDuration(text)).toBeUndefined());
});

describe("clusterOptions", () => {
  test("defaults: remove the taint, wait 5m", () => {
    expect(clusterOptions(args({}), {})).toEqual({ keepTaint: false, waitSeconds: 300, waitText: "5m" });
  });
  test("--wait and --control-plane-taint; the variable keeps the taint when the flag is not given", () => {
    expect(clusterOptions(args({ wait: "0", "control-plane-taint": true }), {})).toEqual({ keepTaint: true, waitSeconds: 0, waitText: "0" });
    for (const v of ["1", "true", "YES", " yes "]) expect(clusterOptions(args({}), { U7S_CONTROL_PLANE_TAINT: v }).keepTaint).toBe(true);
    for (const v of ["", "0", "false", "No"]) expect(clusterOptions(args({}), { U7S_CONTROL_PLANE_TAINT: v }).keepTaint).toBe(false);
    expect(clusterOptions(args({ "control-plane-taint": true }), { U7S_CONTROL_PLANE_TAINT: "0" }).keepTaint).toBe(true);
  });
  test("bad values are usage errors naming the value and what is valid", () => {
    const err = (fn: () => unknown) => {
      try {
        fn();
      } catch (e) {
        return e as UsageError;
      }
      return undefined;
    };
    const w = err(() => clusterOptions(args({ wait: "soon" }), {}));
    expect(w).toBeInstanceOf(UsageError);
    expect(w!.message).toBe('--wait="soon": not a duration (valid: e.g. 90s, 5m, 1h30m, a number of seconds, or 0 to not wait)');
    const t = err(() => clusterOptions(args({}), { U7S_CONTROL_PLANE_TAINT: "maybe" }));
    expect(t).toBeInstanceOf(UsageError);
    expect(t!.message).toBe('U7S_CONTROL_PLANE_TAINT="maybe": not a boolean (valid: 1, true, yes to keep the taint; 0, false, no or unset to remove it)');
  });
});

describe("the commands", () => {
  const NODE = "u7s-node-a";
  let home = "";
  let node: FakeClusterNode;
  const u7s = (argv: string[], extra: Record<string, string> = {}) =>
    runCli(argv, { runner: node.recorder, env: { CONTAINER_ENGINE: "docker", HOME: home, XDG_CONFIG_HOME: join(home, "cfg"), XDG_STATE_HOME: join(home, "state"), ...extra } });
  const taints = () => (JSON.parse(node.state.nodesJson).items[0].spec?.taints ?? []).map((t: { key: string }) => t.key);
  beforeEach(() => {
    home = mkdtempSync(join(tmpdir(), "u7s-cluster-flags-"));
    node = new FakeClusterNode(NODE);
  });
  afterEach(() => rmSync(home, { recursive: true, force: true }));

  test.each([[["up"]], [["kubeadm-init"]], [["kubeadm-join", "join.json"]]])("%p --wait soon: exit 2 before any engine command", async (argv: string[]) => {
    const r = await u7s([...argv, "--wait", "soon"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--wait="soon": not a duration');
    expect(node.recorder.calls).toHaveLength(0);
  });

  test("kubeadm-init removes the taint kubeadm set, then waits for the node (Ready at once here)", async () => {
    const r = await u7s(["kubeadm-init"]);
    expect(r.code, r.stderr).toBe(0);
    expect(taints()).toEqual([]);
    expect(r.stderr).toContain(`Making the control plane schedulable (removing taint ${CONTROL_PLANE_TAINT}:NoSchedule)`);
    expect(r.stderr).toMatch(new RegExp(` ✓ Waiting for node ${NODE} to be Ready \\(up to 5m\\)`));
  });

  test("kubeadm-init with U7S_CONTROL_PLANE_TAINT=1 keeps it; --wait 0 does not wait", async () => {
    const r = await u7s(["kubeadm-init", "--wait", "0"], { U7S_CONTROL_PLANE_TAINT: "1" });
    expect(r.code, r.stderr).toBe(0);
    expect(taints()).toEqual([CONTROL_PLANE_TAINT]);
    expect(r.stderr).toContain("kept (--control-plane-taint)");
    expect(node.ran("kubectl", "get", "node")).toBe(false);
  });

  test("kubeadm-join waits for its node with the kubelet's kubeconfig (a worker has no admin.conf)", async () => {
    const file = join(home, "join.json");
    writeFileSync(
      file,
      JSON.stringify({
        kind: "u7s-join",
        version: 1,
        controlPlane: { nodeName: "u7s-cp", hostIp: "192.0.2.10", portKubeApiserver: 6443, portFlannel: 8472, nodeSubnet: "10.100.250.0/24" },
        join: { endpoint: "u7s-cp:6443", token: "abcdef.0123456789abcdef", caCertHashes: [FAKE_JOIN_HASH] },
        created: "2026-11-23T10:00:00Z",
      }),
    );
    const r = await u7s(["kubeadm-join", file, "--wait", "30s"]);
    expect(r.code, r.stderr).toBe(0);
    const get = node.inNode.find((c) => c.cmd.slice(0, 3).join(" ") === "kubectl get node");
    expect(get?.env.KUBECONFIG).toBe("/etc/kubernetes/kubelet.conf");
    expect(r.stderr).toContain(`Waiting for node ${NODE} to be Ready (up to 30s)`);
    expect(node.inNode.findIndex((c) => c === get)).toBeGreaterThan(node.inNode.findIndex((c) => c.cmd[0] === "kubeadm"));
  });
});
