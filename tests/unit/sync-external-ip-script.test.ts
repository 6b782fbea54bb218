// assets/u7s-sync-external-ip.sh run for real by bash, with a stand-in kubectl that prints canned
// `get` output (the lines its jsonpath templates make: real kubectl against the API double runs
// those templates in tests/e2e/cluster.test.ts) and records every other call, and a stand-in date.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SYNC_EXTERNAL_IP_SCRIPT } from "../../lib/assets.ts";

const IP = "192.0.2.2";
const NOW = "2026-12-02T10:00:30Z";
const OVERWRITE = "flannel.alpha.coreos.com/public-ip-overwrite";
const OVERWRITE_TIME = "u7s.io/public-ip-overwrite-time";
let dir = "";

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "u7s-sync-script-"));
  const kubectl = [
    "#!/bin/bash",
    'd=$(dirname "$0")',
    'if [ "$1" = get ] && [ "$2" = nodes ]; then cat "$d/nodes"; exit 0; fi',
    'if [ "$1" = get ] && [ "$2" = pods ]; then printf "%s\\n" "$*" >> "$d/calls"; cat "$d/pods"; exit 0; fi',
    'printf "%s\\n" "$*" >> "$d/calls"',
  ].join("\n");
  writeFileSync(join(dir, "kubectl"), kubectl);
  writeFileSync(join(dir, "date"), `#!/bin/bash\n[ "$*" = "-u +%Y-%m-%dT%H:%M:%SZ" ] && echo ${NOW}\n`);
  chmodSync(join(dir, "kubectl"), 0o755);
  chmodSync(join(dir, "date"), 0o755);
  writeFileSync(join(dir, "pods"), "");
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** NodeLine is one node as the script's jsonpath prints it. */
interface NodeLine {
  name?: string;
  hostIp?: string;
  addresses?: string;
  overwrite?: string;
  overwriteTime?: string;
  publicIp?: string;
  taints?: string;
}
const nodeLine = (n: NodeLine) =>
  [n.name ?? "u7s-a", n.hostIp ?? IP, n.addresses ?? `ExternalIP=${IP},`, n.overwrite ?? IP, n.overwriteTime ?? "2026-12-02T10:00:00Z", n.publicIp ?? IP, n.taints ?? ""].join("|");
/** podLine is one Flannel pod as the script's jsonpath prints it: name, node, deletion time, running containers' start times. */
const podLine = (name: string, node: string, starts: string, deleting = "") => `${name}|${node}|${deleting}|${starts}`;

/** sync runs the script once with these nodes and Flannel pods; it returns its output and the kubectl calls that change something. */
function sync(nodes: NodeLine[], pods: string[] = [], mode: string[] = ["--once"]) {
  writeFileSync(join(dir, "nodes"), nodes.map(nodeLine).join("\n") + "\n");
  writeFileSync(join(dir, "pods"), pods.join("\n") + (pods.length ? "\n" : ""));
  const r = Bun.spawnSync(["bash", "-c", SYNC_EXTERNAL_IP_SCRIPT, "u7s-sync-external-ip", ...mode], { env: { PATH: `${dir}:/usr/bin:/bin` } });
  let calls: string[] = [];
  try {
    calls = readFileSync(join(dir, "calls"), "utf8").split("\n").filter(Boolean);
  } catch {}
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString(), calls, changes: calls.filter((c) => !c.startsWith("get ")) };
}

describe("u7s-sync-external-ip.sh: addresses", () => {
  test("a node in sync changes nothing and says so", () => {
    const r = sync([{}]);
    expect([r.code, r.err, r.out, r.calls]).toEqual([0, "", `u7s-a: in sync (${IP})\n`, []]);
  });

  test.each([
    ["the kubelet's InternalIP and Hostname (before the first sync)", "InternalIP=10.100.1.100,Hostname=u7s-a,"],
    ["the ExternalIP next to the kubelet's addresses", `InternalIP=10.100.1.100,ExternalIP=${IP},Hostname=u7s-a,`],
    ["another ExternalIP", "ExternalIP=192.0.2.9,"],
    ["two ExternalIPs", `ExternalIP=${IP},ExternalIP=192.0.2.9,`],
    ["no address", ""],
  ])("%s: status.addresses becomes exactly [ExternalIP] (upstream's patch)", (_what, addresses) => {
    const r = sync([{ addresses }]);
    expect(r.code).toBe(0);
    expect(r.changes).toEqual([`patch node u7s-a --subresource status --type merge -p {"status":{"addresses":[{"type":"ExternalIP","address":"${IP}"}]}}`]);
    expect(r.out).toBe(`u7s-a: addresses set to ExternalIP ${IP} only\n`);
  });
});

describe("u7s-sync-external-ip.sh: overwrite annotation and taints", () => {
  test("a new or changed host IP: the overwrite and the time it was set, in one annotate", () => {
    for (const overwrite of ["", "192.0.2.9"]) {
      rmSync(join(dir, "calls"), { force: true });
      const r = sync([{ overwrite, overwriteTime: overwrite ? "2026-12-01T00:00:00Z" : "" }]);
      expect(r.changes).toEqual([`annotate --overwrite node u7s-a ${OVERWRITE}=${IP} ${OVERWRITE_TIME}=${NOW}`]);
      expect(r.out).toBe(`u7s-a: ${OVERWRITE} set to ${IP}\n`);
    }
  });

  test("an overwrite set by someone else (no time recorded): only its time is recorded, silently", () => {
    for (const overwriteTime of ["", "yesterday"]) {
      rmSync(join(dir, "calls"), { force: true });
      const r = sync([{ overwriteTime }]);
      expect(r.changes).toEqual([`annotate --overwrite node u7s-a ${OVERWRITE_TIME}=${NOW}`]);
      expect(r.out).toBe(`u7s-a: in sync (${IP})\n`);
    }
  });

  test("the uninitialized taint is removed; the control plane's node-role taint and others are never touched", () => {
    const r = sync([{ taints: "node-role.kubernetes.io/control-plane,node.cloudprovider.kubernetes.io/uninitialized,example.com/x," }]);
    expect(r.changes).toEqual(["taint nodes u7s-a node.cloudprovider.kubernetes.io/uninitialized-"]);
    expect(r.out).toBe("u7s-a: taint node.cloudprovider.kubernetes.io/uninitialized removed\n");
    rmSync(join(dir, "calls"), { force: true });
    expect(sync([{ taints: "node-role.kubernetes.io/control-plane," }]).calls).toEqual([]);
  });

  test("a node without the host-IP label is skipped, saying why; the others are synced", () => {
    const r = sync([{ name: "other", hostIp: "" }, { name: "u7s-b", addresses: "" }]);
    expect(r.out).toBe(`other: no usernetes/host-ip label (is its node container started by u7s with HOST_IP?); skipped\nu7s-b: addresses set to ExternalIP ${IP} only\n`);
    expect(r.changes.every((c) => c.includes("u7s-b"))).toBe(true);
  });
});

describe("u7s-sync-external-ip.sh: Flannel pods", () => {
  const stale = { publicIp: "10.100.1.100", overwriteTime: "2026-12-02T10:00:10Z" };
  test("a pod that started before the overwrite was set, on a node that announces another IP, is deleted once, saying why", () => {
    const r = sync([stale], [podLine("kube-flannel-ds-old", "u7s-a", "2026-12-02T10:00:05Z,")]);
    expect(r.calls).toEqual([`get pods -n kube-flannel -l app=flannel -o jsonpath=${r.calls[0]!.split("jsonpath=")[1]}`, "delete pod -n kube-flannel kube-flannel-ds-old --wait=false"]);
    expect(r.out).toBe(
      "u7s-a: Flannel pod kube-flannel-ds-old restarted (it started at 2026-12-02T10:00:05Z, before flannel.alpha.coreos.com/public-ip-overwrite was set at 2026-12-02T10:00:10Z, and announced 10.100.1.100)\n",
    );
  });

  test("a pod that started in the same second as the overwrite counts as before it (it may have read the old value)", () => {
    expect(sync([stale], [podLine("p", "u7s-a", "2026-12-02T10:00:10.9Z,")]).changes).toEqual(["delete pod -n kube-flannel p --wait=false"]);
  });

  test("the overwrite set in this very run: every pod running before now is deleted", () => {
    const r = sync([{ ...stale, overwrite: "192.0.2.9" }], [podLine("p", "u7s-a", "2026-12-02T10:00:20Z,")]);
    expect(r.changes).toEqual([`annotate --overwrite node u7s-a ${OVERWRITE}=${IP} ${OVERWRITE_TIME}=${NOW}`, "delete pod -n kube-flannel p --wait=false"]);
  });

  test("a pod still starting (no container running) is left alone, as is one that started after the overwrite (the replacement): at most one restart per change", () => {
    const pods = [podLine("starting", "u7s-a", ""), podLine("replacement", "u7s-a", "2026-12-02T10:00:11Z,")];
    for (let run = 0; run < 3; run++) {
      const r = sync([stale], pods);
      expect(r.changes).toEqual([]);
      expect(r.out).toBe(
        "u7s-a: Flannel pod starting is still starting (left alone: it reads the overwrite when it starts); Flannel pod replacement started after the overwrite (left alone: it announces 192.0.2.2)\n",
      );
    }
    // the service (--every) prints nothing when it changes nothing
    const every = Bun.spawnSync(["timeout", "1", "bash", "-c", SYNC_EXTERNAL_IP_SCRIPT, "u7s-sync-external-ip", "--every", "5"], { env: { PATH: `${dir}:/usr/bin:/bin` } });
    expect(every.stdout.toString()).toBe("");
    expect(readFileSync(join(dir, "calls"), "utf8")).not.toContain("delete");
  });

  test("the earliest running container counts; a pod being deleted, pods of other nodes and a node announcing its host IP are left alone", () => {
    const pods = [podLine("two", "u7s-a", "2026-12-02T10:00:20Z,2026-12-02T10:00:01Z,"), podLine("going", "u7s-a", "2026-12-02T10:00:01Z,", "2026-12-02T10:00:25Z"), podLine("elsewhere", "u7s-b", "2026-12-02T10:00:01Z,")];
    expect(sync([stale], pods).changes).toEqual(["delete pod -n kube-flannel two --wait=false"]);
    rmSync(join(dir, "calls"), { force: true });
    // public-ip equal to the host IP, or not announced yet: Flannel's pods are not even listed
    expect(sync([{ overwriteTime: stale.overwriteTime }, { name: "u7s-b", publicIp: "" }], pods).calls).toEqual([]);
  });

  test("a start time that is not one is ignored (the pod counts as starting)", () => {
    expect(sync([stale], [podLine("p", "u7s-a", "garbage,")]).changes).toEqual([]);
  });
});
