import { syncExternalIps } from "../cluster/external-ip.ts";
import { clusterContext, requireControlPlane } from "./_cluster.ts";
import type { CommandDef } from "./_types.ts";

/** syncExternalIp sets every node's ExternalIP, Flannel public-IP annotation and taint from its host IP. */
export const syncExternalIp: CommandDef = {
  name: "sync-external-ip",
  group: "cluster",
  summary: "set each node's ExternalIP from its host IP (and repair Flannel)",
  description:
    "For each node with a usernetes/host-ip label: status addresses exactly [ExternalIP = that IP] (as upstream's),\n" +
    "annotation flannel.alpha.coreos.com/public-ip-overwrite = that IP (overwritten when it changed; when, in\n" +
    "u7s.io/public-ip-overwrite-time), taint node.cloudprovider.kubernetes.io/uninitialized removed (no other\n" +
    "taint); a Flannel pod that started before the overwrite was set, on a node announcing another IP, is\n" +
    "restarted (at most once per change; a pod still starting is left alone). Prints one line per node. Runs\n" +
    "on the control plane's host; safe to re-run.",
  settings: true,
  examples: ["u7s sync-external-ip"],
  async run(ctx) {
    const { env } = await clusterContext(ctx);
    await requireControlPlane(env, "sync-external-ip");
    for (const line of await syncExternalIps(env)) ctx.out.write(`${line}\n`);
  },
};
