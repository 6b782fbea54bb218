// The control plane's taint: removed from a control plane u7s initialises (as upstream's README and CI,
// and kind without workers, do), kept on request, never touched on a re-run.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bringUpControlPlane, initSteps, type ClusterOptions } from "../../../lib/cluster/bringup.ts";
import { CONTROL_PLANE_TAINT, removeControlPlaneTaint, untaintStep } from "../../../lib/cluster/control-plane.ts";
import type { ClusterEnv } from "../../../lib/cluster/node.ts";
import { runSteps } from "../../../lib/steps.ts";
import { FakeClusterNode, fakeClusterEnv } from "../../fixtures/fake-cluster-node.ts";
import type { CaptureWriter } from "../../fixtures/fakes.ts";

const NODE = "u7s-node-a";
const ADMIN = "/etc/kubernetes/admin.conf";
const OPTS: ClusterOptions = { keepTaint: false, waitSeconds: 0, waitText: "0" };
const TAINT_ARGS = ["kubectl", "taint", "nodes", NODE, `${CONTROL_PLANE_TAINT}:NoSchedule-`];
let dir = "";
let node: FakeClusterNode;
let env: ClusterEnv & { stderr: CaptureWriter };

/** nodeItem is a Node with these taints, synced (so Flannel may install). */
const nodeItem = (taints: { key: string; effect: string }[]) => ({
  metadata: { name: NODE, labels: { "usernetes/host-ip": "192.0.2.2" }, annotations: { "flannel.alpha.coreos.com/public-ip-overwrite": "192.0.2.2" } },
  spec: { taints },
  status: { addresses: [{ type: "ExternalIP", address: "192.0.2.2" }] },
});
const taintsNow = () => (JSON.parse(node.state.nodesJson).items[0].spec?.taints ?? []).map((t: { key: string; effect: string }) => `${t.key}:${t.effect}`);

afterEach(() => rmSync(dir, { recursive: true, force: true }));
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "u7s-cp-"));
  node = new FakeClusterNode(NODE);
  node.state.nodesJson = JSON.stringify({ items: [nodeItem([{ key: "example.com/mine", effect: "NoSchedule" }])] });
  env = await fakeClusterEnv(node);
});

describe("a new control plane", () => {
  test("kubeadm init taints it; the taint is removed right after, before the sync, and the progress says so; other taints stay", async () => {
    await bringUpControlPlane(env, "none", join(dir, "kubeconfig"), false, env.log, OPTS);
    const at = (...w: string[]) => node.inNode.findIndex((c) => w.every((x, i) => c.cmd[i] === x));
    expect(at(...TAINT_ARGS)).toBeGreaterThan(at("kubeadm", "init"));
    expect(at(...TAINT_ARGS)).toBeLessThan(at("bash", "-c"));
    expect(taintsNow()).toEqual(["example.com/mine:NoSchedule"]);
    expect(env.stderr.text).toContain(` ✓ Making the control plane schedulable (removing taint ${CONTROL_PLANE_TAINT}:NoSchedule)`);
  });

  test("--control-plane-taint keeps it: no taint command, and the progress says it is kept", async () => {
    await runSteps(env.log, initSteps(env, false, true));
    expect(node.ran("kubectl", "taint")).toBe(false);
    expect(taintsNow()).toEqual(["example.com/mine:NoSchedule", `${CONTROL_PLANE_TAINT}:NoSchedule`]);
    expect(env.stderr.text).toContain(` - Making the control plane schedulable (removing taint ${CONTROL_PLANE_TAINT}:NoSchedule): kept (--control-plane-taint)`);
  });

  test("an initialised control plane (a re-run of up) keeps its taints as they are", async () => {
    node.state.files.add(ADMIN);
    node.state.nodesJson = JSON.stringify({ items: [nodeItem([{ key: CONTROL_PLANE_TAINT, effect: "NoSchedule" }])] });
    await bringUpControlPlane(env, "control-plane", join(dir, "kubeconfig"), false, env.log, OPTS);
    expect(node.ran("kubectl", "taint")).toBe(false);
    expect(node.ran("kubectl", "get", "node")).toBe(false);
  });
});

describe("removeControlPlaneTaint", () => {
  beforeEach(() => void node.state.files.add(ADMIN));
  test("removes only the NoSchedule taint of that key; without it, it runs no taint command (idempotent)", async () => {
    node.state.nodesJson = JSON.stringify({ items: [nodeItem([{ key: CONTROL_PLANE_TAINT, effect: "PreferNoSchedule" }, { key: CONTROL_PLANE_TAINT, effect: "NoSchedule" }])] });
    expect(await removeControlPlaneTaint(env)).toBe(true);
    expect(taintsNow()).toEqual([`${CONTROL_PLANE_TAINT}:PreferNoSchedule`]);
    expect(await removeControlPlaneTaint(env)).toBe(false);
    expect(node.inNode.filter((c) => c.cmd[1] === "taint")).toHaveLength(1);
  });

  test("the step on a node without the taint says so and succeeds", async () => {
    await runSteps(env.log, [untaintStep(env, false)]);
    expect(env.stderr.text).toContain(`   node ${NODE} had no such taint\n`);
  });

  test("a node that cannot be read fails the step, naming it", async () => {
    node.state.nodesJson = '{"items":[]}';
    const e = await runSteps(env.log, [untaintStep(env, false)]).then(() => undefined, (err: Error) => err);
    expect(e?.message).toStartWith("cannot remove the control plane's taint: command failed (exit code 1)");
  });
});
