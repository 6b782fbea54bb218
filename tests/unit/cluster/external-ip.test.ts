// External IPs: the sync service in the control-plane node (its unit, how it is installed and
// removed), the one-shot sync, and the check that keeps Flannel from announcing private node IPs.
import { beforeEach, describe, expect, test } from "bun:test";
import { SYNC_EXTERNAL_IP_SCRIPT } from "../../../lib/assets.ts";
import {
  installSyncService,
  parseNodeAddresses,
  removeSyncService,
  requireSynced,
  SYNC_INTERVAL_SECONDS,
  SYNC_SCRIPT_PATH,
  SYNC_UNIT,
  syncExternalIps,
  syncUnit,
  unsyncedNodes,
  type NodeAddressState,
} from "../../../lib/cluster/external-ip.ts";
import type { ClusterEnv } from "../../../lib/cluster/node.ts";
import { U7sError } from "../../../lib/errors.ts";
import { FakeClusterNode, fakeClusterEnv } from "../../fixtures/fake-cluster-node.ts";

const NODE = "u7s-node-a";
const UNIT_PATH = `/etc/systemd/system/${SYNC_UNIT}`;
let node: FakeClusterNode;
let env: ClusterEnv;
beforeEach(async () => {
  node = new FakeClusterNode(NODE);
  node.state.files.add("/etc/kubernetes/admin.conf");
  env = await fakeClusterEnv(node);
});

/** unitSections reads a systemd unit file strictly: every line is blank, a [Section] or Key=Value. */
function unitSections(text: string): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  let section: Record<string, string> | undefined;
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const head = /^\[(\w+)\]$/.exec(line);
    if (head) out[head[1]!] = section = {};
    else if (/^[A-Za-z]+=/.test(line) && section) section[line.slice(0, line.indexOf("="))] = line.slice(line.indexOf("=") + 1);
    else throw new Error(`not a unit file line: ${JSON.stringify(line)}`);
  }
  return out;
}

describe("the sync service's unit", () => {
  test("runs the script from /etc (a volume) every few seconds with the admin kubeconfig, only on an initialised node, on every boot", () => {
    const unit = unitSections(syncUnit());
    expect(unit.Unit!.Description).not.toBe("");
    delete unit.Unit!.Description;
    expect(unit).toEqual({
      Unit: { ConditionPathExists: "/etc/kubernetes/admin.conf" },
      // restarted whenever it stops; never holds up a reset or a shutdown
      Service: { Environment: "KUBECONFIG=/etc/kubernetes/admin.conf", ExecStart: `/bin/bash ${SYNC_SCRIPT_PATH} --every ${SYNC_INTERVAL_SECONDS}`, Restart: "always", RestartSec: "10", TimeoutStopSec: "5" },
      Install: { WantedBy: "multi-user.target" },
    });
    expect(SYNC_SCRIPT_PATH).toStartWith("/etc/u7s/");
    expect(syncUnit().endsWith("\n")).toBe(true);
  });
});

describe("installSyncService and removeSyncService", () => {
  test("install writes this u7s's script and the unit, reloads systemd, then enables and restarts the service", async () => {
    await installSyncService(env);
    expect(node.state.contents.get(SYNC_SCRIPT_PATH)).toBe(SYNC_EXTERNAL_IP_SCRIPT);
    expect(node.state.contents.get(UNIT_PATH)).toBe(syncUnit());
    const systemctl = node.inNode.filter((c) => c.cmd[0] === "systemctl").map((c) => c.cmd.slice(1).join(" "));
    expect(systemctl).toEqual(["daemon-reload", `enable ${SYNC_UNIT}`, `restart ${SYNC_UNIT}`]);
    expect(node.inNode.findIndex((c) => c.cmd[0] === "systemctl")).toBe(2); // after both files
  });

  test("remove stops and disables the service, removes both files, then reloads systemd", async () => {
    await installSyncService(env);
    node.inNode.length = 0;
    await removeSyncService(env);
    expect(node.inNode.map((c) => c.cmd.join(" "))).toEqual([`systemctl disable --now ${SYNC_UNIT}`, `rm -f ${UNIT_PATH} ${SYNC_SCRIPT_PATH}`, "systemctl daemon-reload"]);
    expect([...node.state.contents.keys()]).toEqual([]);
  });

  test("remove on a node without the service (systemctl fails) still succeeds", async () => {
    node.state.fail.push("systemctl");
    await removeSyncService(env);
    expect(node.ran("rm", "-f", UNIT_PATH, SYNC_SCRIPT_PATH)).toBe(true);
  });
});

describe("syncExternalIps", () => {
  test("runs this binary's script once in the node and returns its non-empty lines", async () => {
    node.state.syncOutput = "u7s-a: ExternalIP 192.0.2.2\n  \nu7s-b: in sync (192.0.2.3)\n\n";
    expect(await syncExternalIps(env)).toEqual(["u7s-a: ExternalIP 192.0.2.2", "u7s-b: in sync (192.0.2.3)"]);
    expect(node.inNode.map((c) => c.cmd)).toEqual([["bash", "-c", SYNC_EXTERNAL_IP_SCRIPT, "u7s-sync-external-ip", "--once"]]);
  });
});

const item = (name: string, hostIp: string | undefined, addresses: [string, string][], overwrite?: string) => ({
  metadata: { name, labels: hostIp ? { "usernetes/host-ip": hostIp } : {}, annotations: overwrite ? { "flannel.alpha.coreos.com/public-ip-overwrite": overwrite } : {} },
  status: { addresses: addresses.map(([type, address]) => ({ type, address })) },
});

describe("parseNodeAddresses", () => {
  test("reads each node's host-IP label, ExternalIPs only, and the Flannel overwrite annotation", () => {
    const json = JSON.stringify({ items: [item("a", "192.0.2.2", [["InternalIP", "10.100.1.2"], ["ExternalIP", "192.0.2.2"], ["Hostname", "a"]], "192.0.2.2")] });
    expect(parseNodeAddresses(json)).toEqual([{ name: "a", hostIp: "192.0.2.2", externalIps: ["192.0.2.2"], otherAddresses: ["InternalIP=10.100.1.2", "Hostname=a"], overwrite: "192.0.2.2" }]);
    // an ExternalIP entry without an address counts as one that is not the host IP
    expect(parseNodeAddresses('{"items":[{"status":{"addresses":[{"type":"ExternalIP"}]}}]}')[0]!.externalIps).toEqual([""]);
  });
  test("a list without items, and items without metadata or status, read as nothing set", () => {
    expect(parseNodeAddresses("{}")).toEqual([]);
    expect(parseNodeAddresses('{"items":[{},{"metadata":{},"status":{"addresses":[{}]}}]}')).toEqual([
      { name: "", hostIp: undefined, externalIps: [], otherAddresses: [], overwrite: undefined },
      { name: "", hostIp: undefined, externalIps: [], otherAddresses: ["="], overwrite: undefined },
    ]);
  });
});

describe("unsyncedNodes", () => {
  const n = (externalIps: string[], overwrite: string | undefined, hostIp: string | undefined, otherAddresses: string[] = []): NodeAddressState => ({ name: "n", hostIp, externalIps, otherAddresses, overwrite });
  const ip = "192.0.2.2";
  test.each([
    ["in sync", n([ip], ip, ip), false],
    ["not a u7s node (no host-IP label)", n([], undefined, undefined), false],
    ["no ExternalIP yet", n([], ip, ip), true],
    ["another ExternalIP", n(["192.0.2.9"], ip, ip), true],
    ["an extra ExternalIP", n([ip, "192.0.2.9"], ip, ip), true],
    ["the kubelet's InternalIP next to the ExternalIP (upstream keeps only the ExternalIP)", n([ip], ip, ip, ["InternalIP=10.100.1.100"]), true],
    ["no Flannel overwrite", n([ip], undefined, ip), true],
    ["another Flannel overwrite", n([ip], "192.0.2.9", ip), true],
  ])("%s", (_what, state, listed) => {
    expect(unsyncedNodes([state])).toEqual(listed ? ["n"] : []);
  });
});

describe("requireSynced", () => {
  const synced = (name: string, ip: string) => item(name, ip, [["ExternalIP", ip]], ip);
  const set = (...items: unknown[]) => void (node.state.nodesJson = JSON.stringify({ items }));
  test("a single node need not be synced (no other host to reach it); a cluster whose nodes are synced passes", async () => {
    set(item("a", "192.0.2.2", []));
    await requireSynced(env);
    set(synced("a", "192.0.2.2"), synced("b", "192.0.2.3"));
    await requireSynced(env);
  });
  test("several nodes with some behind: refused, naming each and the command that syncs them", async () => {
    set(synced("a", "192.0.2.2"), item("b", "192.0.2.3", []), item("c", "192.0.2.4", [["ExternalIP", "10.100.3.2"]], "192.0.2.4"));
    const e = await requireSynced(env).then(() => undefined, (err: unknown) => err as U7sError);
    expect(e).toBeInstanceOf(U7sError);
    expect(e!.message).toStartWith("external IPs are not synced on b, c:");
    expect(e!.hint).toContain("`u7s sync-external-ip`");
  });
});
