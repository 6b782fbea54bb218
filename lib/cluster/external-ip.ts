import { SYNC_EXTERNAL_IP_SCRIPT } from "../assets.ts";
import { U7sError } from "../errors.ts";
import { container, inNode, kubectl, writeNodeFile, type ClusterEnv } from "./node.ts";

/** SYNC_SCRIPT_PATH is where the sync script lives in a control-plane node (/etc: a volume, so it survives restarts). */
export const SYNC_SCRIPT_PATH = "/etc/u7s/sync-external-ip.sh";
/** SYNC_UNIT is the systemd service in the control-plane node that syncs joined nodes without a manual step. */
export const SYNC_UNIT = "u7s-sync-external-ip.service";
/** SYNC_INTERVAL_SECONDS is how often the service syncs. */
export const SYNC_INTERVAL_SECONDS = 5;

/** syncUnit is the service's unit file. */
export function syncUnit(): string {
  return [
    "[Unit]",
    "Description=u7s: set every node's ExternalIP and Flannel public IP from its host IP",
    "ConditionPathExists=/etc/kubernetes/admin.conf",
    "",
    "[Service]",
    "Environment=KUBECONFIG=/etc/kubernetes/admin.conf",
    `ExecStart=/bin/bash ${SYNC_SCRIPT_PATH} --every ${SYNC_INTERVAL_SECONDS}`,
    "Restart=always",
    "RestartSec=10",
    // A loop of short kubectl calls: nothing to finish on stop, so never hold up a reset or shutdown.
    "TimeoutStopSec=5",
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ].join("\n");
}

/** syncExternalIps runs upstream's three steps (and the Flannel pod repair) once for every node; it returns one line per node. */
export async function syncExternalIps(env: ClusterEnv): Promise<string[]> {
  // The script comes from this binary (not from the node), so the node always runs this version's logic.
  const r = await inNode(env, ["bash", "-c", SYNC_EXTERNAL_IP_SCRIPT, "u7s-sync-external-ip", "--once"]);
  return r.stdout.split("\n").filter((l) => l.trim() !== "");
}

/** installSyncService writes the sync script and its unit into the control-plane node and starts it; re-running updates both. */
export async function installSyncService(env: ClusterEnv): Promise<void> {
  await writeNodeFile(env, SYNC_SCRIPT_PATH, SYNC_EXTERNAL_IP_SCRIPT);
  await writeNodeFile(env, `/etc/systemd/system/${SYNC_UNIT}`, syncUnit());
  await inNode(env, ["systemctl", "daemon-reload"]);
  await inNode(env, ["systemctl", "enable", SYNC_UNIT]);
  await inNode(env, ["systemctl", "restart", SYNC_UNIT]);
}

/** removeSyncService stops and removes the sync service; nothing happens when it is absent. */
export async function removeSyncService(env: ClusterEnv): Promise<void> {
  await env.engine.exec(container(env), ["systemctl", "disable", "--now", SYNC_UNIT]);
  await inNode(env, ["rm", "-f", `/etc/systemd/system/${SYNC_UNIT}`, SYNC_SCRIPT_PATH]);
  await env.engine.exec(container(env), ["systemctl", "daemon-reload"]);
}

/** NodeAddressState is what install-flannel checks of each node before Flannel may start. */
export interface NodeAddressState {
  name: string;
  hostIp: string | undefined;
  externalIps: string[];
  /** otherAddresses: the node's addresses of other types (Type=address), which a synced node has none of. */
  otherAddresses: string[];
  overwrite: string | undefined;
}

/** parseNodeAddresses reads `kubectl get nodes -o json`. */
export function parseNodeAddresses(json: string): NodeAddressState[] {
  interface NodeJson {
    metadata?: { name?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
    status?: { addresses?: { type?: string; address?: string }[] };
  }
  const list = JSON.parse(json) as { items?: NodeJson[] };
  return (list.items ?? []).map((n) => ({
    name: n.metadata?.name ?? "",
    hostIp: n.metadata?.labels?.["usernetes/host-ip"],
    externalIps: (n.status?.addresses ?? []).filter((a) => a.type === "ExternalIP").map((a) => a.address ?? ""),
    otherAddresses: (n.status?.addresses ?? []).filter((a) => a.type !== "ExternalIP").map((a) => `${a.type ?? ""}=${a.address ?? ""}`),
    overwrite: n.metadata?.annotations?.["flannel.alpha.coreos.com/public-ip-overwrite"],
  }));
}

/** unsyncedNodes names the nodes whose addresses are not exactly [ExternalIP = host IP] (upstream's) or whose Flannel overwrite annotation is not their host IP. */
export function unsyncedNodes(nodes: readonly NodeAddressState[]): string[] {
  return nodes
    .filter((n) => n.hostIp !== undefined && !(n.externalIps.length === 1 && n.externalIps[0] === n.hostIp && n.otherAddresses.length === 0 && n.overwrite === n.hostIp))
    .map((n) => n.name);
}

/** requireSynced refuses to go on when a multi-node cluster has nodes whose external IP is not synced (Flannel would announce their private IPs). */
export async function requireSynced(env: ClusterEnv): Promise<void> {
  const nodes = parseNodeAddresses(await kubectl(env, ["get", "nodes", "-o", "json"]));
  const behind = unsyncedNodes(nodes);
  if (nodes.length > 1 && behind.length > 0) {
    throw new U7sError(`external IPs are not synced on ${behind.join(", ")}: Flannel would announce their private node IPs to other hosts`, {
      hint: "run `u7s sync-external-ip` first",
    });
  }
}
