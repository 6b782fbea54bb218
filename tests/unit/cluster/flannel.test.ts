// installFlannel against the fake node's kubectl and helm: the namespace first, then the chart, and
// only when the deployed release is not already what this host wants.
import { beforeEach, describe, expect, test } from "bun:test";
import { FLANNEL_CHART_PATH } from "../../../lib/assets.ts";
import { installFlannel } from "../../../lib/cluster/flannel.ts";
import type { ClusterEnv } from "../../../lib/cluster/node.ts";
import { FakeClusterNode, fakeClusterEnv } from "../../fixtures/fake-cluster-node.ts";

let node: FakeClusterNode;
let env: ClusterEnv;
beforeEach(async () => {
  node = new FakeClusterNode("u7s-node-a");
  node.state.files.add("/etc/kubernetes/admin.conf");
  env = await fakeClusterEnv(node, { PORT_FLANNEL: "18472" });
});

const HELM = ["helm", "upgrade", "--install", "flannel", FLANNEL_CHART_PATH, "--namespace", "kube-flannel", "--set", "flannel.backendPort=18472"];

describe("installFlannel", () => {
  test("a new cluster: creates and labels the namespace (privileged pods), then installs the chart with PORT_FLANNEL", async () => {
    expect(await installFlannel(env)).toBe(true);
    const cmds = node.inNode.map((c) => c.cmd.join(" "));
    const at = (line: string) => cmds.indexOf(line);
    expect([at("kubectl create namespace kube-flannel"), at("kubectl label --overwrite namespace kube-flannel pod-security.kubernetes.io/enforce=privileged"), at(HELM.join(" "))]).toEqual([1, 2, cmds.length - 1]);
    expect(node.state.flannelPort).toBe(18472);
  });

  test("a namespace that exists already is labelled, not created again", async () => {
    node.state.namespaces.add("kube-flannel");
    expect(await installFlannel(env)).toBe(true);
    expect(node.ran("kubectl", "create")).toBe(false);
    expect(node.ran("kubectl", "label", "--overwrite", "namespace", "kube-flannel")).toBe(true);
  });

  // What helm says about the release decides whether the chart is installed (again).
  test.each([
    ["deployed with this port", "deployed", 18472, undefined, false],
    ["deployed with another port", "deployed", 8472, undefined, true],
    ["failed with this port", "failed", 18472, undefined, true],
    ["deployed without values (helm prints null)", "deployed", 18472, "null", true],
    ["deployed with other values only", "deployed", 18472, '{"podCidr":"10.244.0.0/16"}', true],
    ["deployed with an empty values output", "deployed", 18472, "", true],
    ["whose status has no info", undefined, 18472, undefined, true],
  ])("a release %s: installed again=%p", async (_what, status, port, values, again) => {
    node.state.namespaces.add("kube-flannel");
    Object.assign(node.state, { flannelStatus: status, flannelPort: port, flannelValues: values });
    if (status === undefined) node.state.answers.push(["helm status", { stdout: "{}" }]);
    expect(await installFlannel(env)).toBe(again);
    expect(node.ran(...HELM)).toBe(again);
  });
});
