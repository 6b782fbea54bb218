import { ENTRYPOINT_PATH, SAVED_HOSTS_FILE, UPSTREAM_HOSTS_FILE } from "../assets.ts";
import { U7sError } from "../errors.ts";
import { kubeadmConfig } from "./kubeadm-config.ts";
import { JOIN_FILE_KIND, kubeadmJoinArgs, parsePrintJoinCommand, type JoinFile, type JoinTarget } from "./join-file.ts";
import { ADMIN_CONF, inNode, KUBEADM_CONFIG_PATH, writeNodeFile, type ClusterEnv } from "./node.ts";

/** kubeadmInitArgs is `kubeadm init` with the configuration u7s rendered (`u7s render kubeadm-config`). */
export function kubeadmInitArgs(): string[] {
  // --skip-token-print: the join token is for `u7s join-command`, not for the terminal.
  return ["kubeadm", "init", "--config", KUBEADM_CONFIG_PATH, "--skip-token-print"];
}

/** kubeadmInit hands kubeadm its configuration through exec's stdin and initialises the control plane. */
export async function kubeadmInit(env: ClusterEnv, stream: boolean): Promise<void> {
  await writeNodeFile(env, KUBEADM_CONFIG_PATH, kubeadmConfig(env.config));
  await inNode(env, kubeadmInitArgs(), { stream });
}

/** kubeadmReset undoes kubeadm init or join in the node (`kubeadm reset --force`). */
export async function kubeadmReset(env: ClusterEnv): Promise<void> {
  await inNode(env, ["kubeadm", "reset", "--force"]);
}

/** joinFileFor asks the control plane for a join token and returns the join file for it. */
export async function joinFileFor(env: ClusterEnv, ttl: string, now: Date): Promise<JoinFile> {
  const r = await inNode(env, ["kubeadm", "token", "create", "--print-join-command", "--ttl", ttl], { env: { KUBECONFIG: ADMIN_CONF } });
  let join;
  try {
    join = parsePrintJoinCommand(r.stdout);
  } catch (err) {
    throw new U7sError((err as Error).message);
  }
  const c = env.config;
  const endpoint = `${c.nodeName}:${c.portKubeApiserver}`;
  if (join.endpoint !== endpoint) {
    throw new U7sError(`kubeadm's join endpoint ${join.endpoint} is not this control plane's ${endpoint}`, {
      hint: "was the cluster initialised with another NODE_NAME or PORT_KUBE_APISERVER? `u7s render kubeadm-config` shows what u7s expects",
    });
  }
  return {
    kind: JOIN_FILE_KIND,
    version: 1,
    controlPlane: { nodeName: c.nodeName, hostIp: c.hostIp, portKubeApiserver: c.portKubeApiserver, portFlannel: c.portFlannel, nodeSubnet: c.nodeSubnet, ...(c.nodeMtu !== undefined ? { nodeMtu: c.nodeMtu } : {}) },
    join: { endpoint, token: join.token, caCertHashes: join.caCertHashes },
    created: now.toISOString(),
  };
}

/**
 * saveControlPlaneHost records `HOST_IP NODE_NAME` of the control plane in the worker node's
 * saved hosts file (on the /etc volume) and applies it to /etc/hosts through the entrypoint,
 * which also re-applies it on every start of the node. The entry also goes where upstream keeps
 * it, /etc/hosts.u7s in its join-command's format, so an upstream entrypoint restores it as well.
 */
export async function saveControlPlaneHost(env: ClusterEnv, f: Pick<JoinTarget, "controlPlane">): Promise<void> {
  const { hostIp, nodeName } = f.controlPlane;
  // Values are validated (IPv4, DNS name) and passed as arguments, never spliced into the script.
  const script = [
    "set -eu",
    'f=$1; ip=$2; name=$3; up=$5; mkdir -p "$(dirname "$f")"',
    // Replace an earlier entry for the same name, keep everything else.
    '{ [ -f "$f" ] && awk -v n="$name" \'!($2 == n && NF == 2)\' "$f" || true; echo "$ip $name"; } > "$f.u7s-tmp"',
    'mv -f "$f.u7s-tmp" "$f"',
    // Upstream's join-command writes one entry, two spaces apart, over the file: the same here.
    'printf \'%s  %s\\n\' "$ip" "$name" > "$up.u7s-tmp"',
    'mv -f "$up.u7s-tmp" "$up"',
    '"$4"',
  ].join("\n");
  await inNode(env, ["bash", "-c", script, "u7s-save-host", SAVED_HOSTS_FILE, hostIp, nodeName, ENTRYPOINT_PATH, UPSTREAM_HOSTS_FILE]);
}

/** kubeadmJoin joins the node with the join file's arguments, passed as argv (no shell). */
export async function kubeadmJoin(env: ClusterEnv, f: Pick<JoinTarget, "join">, stream: boolean): Promise<void> {
  await inNode(env, kubeadmJoinArgs(f), { stream });
}
