import { joinSteps, waitStep } from "../cluster/bringup.ts";
import { nodeRole } from "../cluster/node.ts";
import { U7sError, UsageError } from "../errors.ts";
import { runSteps } from "../steps.ts";
import { clusterContext, loadJoinFile } from "./_cluster.ts";
import { nodeLock } from "./_node.ts";
import { clusterOptions, waitOption } from "./_cluster-flags.ts";
import type { CommandDef } from "./_types.ts";

/** kubeadmJoin joins the running node to a cluster with a join file from `u7s join-command`. */
export const kubeadmJoin: CommandDef = {
  name: "kubeadm-join",
  group: "cluster",
  summary: "join this node to a cluster with a join file (from `u7s join-command`)",
  usage: "FILE [flags]",
  description:
    "Validates FILE first (a malformed or tampered file, a PORT_FLANNEL other than the cluster's or the control\n" +
    "plane's NODE_SUBNET are refused with exit code 2 and nothing changed), records the control plane's\n" +
    "HOST_IP and NODE_NAME in the node (kept across restarts), then runs `kubeadm join` with the file's\n" +
    "arguments. The control plane syncs the new node's external IP by itself. Then it waits until the node is\n" +
    "Ready (--wait, default 5m; 0 returns at once), saying what it waits for; on timeout it fails with the\n" +
    "node's conditions and its Flannel pod's last events. On a joined node it succeeds without joining again.",
  settings: true,
  options: { ...waitOption },
  maxPositionals: 1,
  examples: ["u7s kubeadm-join join.json"],
  async run(ctx, args) {
    const path = args.positionals[0];
    if (path === undefined) throw new UsageError("u7s kubeadm-join: no join file given (usage: u7s kubeadm-join FILE)", { hint: "make one with `u7s join-command` on the control plane's host" });
    const opts = clusterOptions(args, ctx.env);
    const config = await ctx.config();
    const file = await loadJoinFile(path, config);
    const { env } = await clusterContext(ctx);
    await nodeLock(ctx, env.config, "u7s kubeadm-join", async () => {
      const role = await nodeRole(env);
      if (role === "worker") {
        ctx.log.info(`node ${config.nodeName} has already joined a cluster (nothing to do)`);
        return;
      }
      if (role === "control-plane") {
        throw new U7sError(`node ${config.nodeName} is a control plane; it cannot join another cluster`, { hint: "run `u7s kubeadm-reset` first" });
      }
      await runSteps(ctx.log, [...joinSteps(env, file, ctx.debug), waitStep(env, opts, "worker")]);
      ctx.log.info(`node ${config.nodeName} joined the cluster of ${file.controlPlane.nodeName}`);
    });
  },
};
