// Before Flannel is installed, its images must be in the node (loaded from a bundle, or pulled
// through the CRI); with neither, install-flannel (and up) says which image and how to bring it.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FLANNEL_IMAGES } from "../../../lib/versions.ts";
import { FakeClusterNode } from "../../fixtures/fake-cluster-node.ts";
import { runCli } from "../../fixtures/fakes.ts";

const NODE = "u7s-node-a";
let home = "";
let node: FakeClusterNode;
const nodesJson = JSON.stringify({ items: [{ metadata: { name: NODE, labels: { "usernetes/host-ip": "192.0.2.2" }, annotations: { "flannel.alpha.coreos.com/public-ip-overwrite": "192.0.2.2" } }, status: { addresses: [{ type: "ExternalIP", address: "192.0.2.2" }] } }] });
const u7s = (argv: string[]) => runCli(argv, { runner: node.recorder, env: { CONTAINER_ENGINE: "docker", HOME: home } });
/** crictl scripts the node's crictl: present or not, which images it has, whether pulls reach a registry. */
const crictl = (o: { present: boolean; has: string[]; registry: boolean }) => {
  node.recorder.on((argv) => argv.includes("crictl"), (argv) => {
    if (!o.present) return { exitCode: 127, stderr: 'exec: "crictl": executable file not found in $PATH' };
    const ref = argv[argv.length - 1]!;
    if (argv.includes("inspecti")) return { exitCode: o.has.includes(ref) ? 0 : 1, stderr: o.has.includes(ref) ? "" : `no such image "${ref}" present` };
    if (argv.includes("pull")) return o.registry ? { stdout: `Image is up to date for ${ref}` } : { exitCode: 1, stderr: `E pulling image: rpc error: failed to resolve reference "${ref}": dial tcp: lookup ghcr.io: no such host` };
    return { stdout: "crictl version v1.35.0" };
  });
};
const ranCrictl = (verb: string) =>
  node.recorder.argvs.filter((a) => a[a.indexOf("crictl") + 1] === verb && a.includes("crictl")).map((a) => a[a.length - 1]);

beforeEach(() => {
  home = mkdtempSync(join(tmpdir(), "u7s-flannel-images-"));
  node = new FakeClusterNode(NODE);
  node.state.files.add("/etc/kubernetes/admin.conf");
  node.state.nodesJson = nodesJson;
});
afterEach(() => rmSync(home, { recursive: true, force: true }));

describe("Flannel's images before Flannel", () => {
  test("present (loaded from a bundle): nothing is pulled", async () => {
    crictl({ present: true, has: [...FLANNEL_IMAGES], registry: false });
    const r = await u7s(["install-flannel"]);
    expect(r.code, r.stderr).toBe(0);
    expect(ranCrictl("pull")).toEqual([]);
    expect(node.ran("helm", "upgrade")).toBe(true);
  });

  test("missing, with a registry: pulled through the CRI, then installed", async () => {
    crictl({ present: true, has: [FLANNEL_IMAGES[0]!], registry: true });
    const r = await u7s(["install-flannel"]);
    expect(r.code, r.stderr).toBe(0);
    expect(ranCrictl("pull")).toEqual([FLANNEL_IMAGES[1]]);
  });

  test("missing, no registry: fails naming the image and how to bring it; Flannel is not installed", async () => {
    crictl({ present: true, has: [], registry: false });
    const r = await u7s(["install-flannel"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`Flannel's image ${FLANNEL_IMAGES[0]} is not in node ${NODE} and cannot be pulled`);
    expect(r.stderr).toContain("no such host");
    expect(r.stderr).toContain("`u7s image load -i FILE`");
    expect(node.ran("helm", "upgrade")).toBe(false);
  });

  test("a node image without crictl: left to the kubelet", async () => {
    crictl({ present: false, has: [], registry: false });
    const r = await u7s(["install-flannel"]);
    expect(r.code, r.stderr).toBe(0);
    expect(ranCrictl("inspecti")).toEqual([]);
  });
});
