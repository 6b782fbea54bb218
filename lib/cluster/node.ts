import type { NodeConfig } from "../config/resolve.ts";
import type { Engine, ExecOptions } from "../engine/engine.ts";
import { CommandError, type RunResult } from "../exec.ts";
import type { Log } from "../log.ts";
import { runningNode } from "../node/lifecycle.ts";
import { nodeNames } from "../node/names.ts";

/** ADMIN_CONF is kubeadm's admin kubeconfig in the node; it exists once `kubeadm init` has run. */
export const ADMIN_CONF = "/etc/kubernetes/admin.conf";
/** KUBELET_CONF is the kubelet's kubeconfig in the node; it exists once the node was initialised or joined. */
export const KUBELET_CONF = "/etc/kubernetes/kubelet.conf";
/** KUBEADM_CONFIG_PATH is where u7s hands kubeadm its configuration in the node (/etc: a volume, kept for reference). */
export const KUBEADM_CONFIG_PATH = "/etc/u7s/kubeadm-config.yaml";

/** ClusterEnv is what the cluster layer works with: one running node of this host. */
export interface ClusterEnv {
  config: NodeConfig;
  engine: Engine;
  log: Log;
}

/** Role is what the node is in a cluster: control plane (kubeadm init ran), worker (joined), or none yet. */
export type Role = "control-plane" | "worker" | "none";

/** nodeName is the node container of this host. */
export function container(env: ClusterEnv): string {
  return nodeNames(env.config).container;
}

/** inNode runs a command in the node and returns its result; a non-zero exit throws a CommandError naming the engine command. */
export async function inNode(env: ClusterEnv, cmd: readonly string[], opts: ExecOptions = {}): Promise<RunResult> {
  const r = await env.engine.exec(container(env), cmd, opts);
  if (r.exitCode !== 0) throw new CommandError(env.engine.execArgs(container(env), cmd, opts), r);
  return r;
}

/** nodeHasFile tells whether a path exists in the node. */
export async function nodeHasFile(env: ClusterEnv, path: string): Promise<boolean> {
  return (await env.engine.exec(container(env), ["test", "-e", path])).exitCode === 0;
}

/** writeNodeFile writes text to a path in the node (mode 0600, parent created), through exec's stdin. */
export async function writeNodeFile(env: ClusterEnv, path: string, text: string): Promise<void> {
  // In the node, not on the host: sh is the node's, and the path is passed as an argument.
  await inNode(env, ["sh", "-c", 'umask 077 && mkdir -p "$(dirname "$1")" && cat > "$1.u7s-tmp" && mv -f "$1.u7s-tmp" "$1"', "sh", path], { input: text });
}

/** nodeRole says whether the (running) node is a control plane, a worker or neither yet; it fails when the node is not running. */
export async function nodeRole(env: ClusterEnv): Promise<Role> {
  await runningNode(env.config, env.engine);
  if (await nodeHasFile(env, ADMIN_CONF)) return "control-plane";
  if (await nodeHasFile(env, KUBELET_CONF)) return "worker";
  return "none";
}

/** kubectl runs kubectl in the node with the admin credentials (the node's KUBECONFIG) and returns its stdout. */
export async function kubectl(env: ClusterEnv, args: readonly string[], opts: ExecOptions = {}): Promise<string> {
  return (await inNode(env, ["kubectl", ...args], { ...opts, env: { KUBECONFIG: ADMIN_CONF, ...opts.env } })).stdout;
}
