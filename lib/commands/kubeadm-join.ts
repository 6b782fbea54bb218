import { joinSteps, waitStep } from "../cluster/bringup.ts";
import { nodeRole } from "../cluster/node.ts";
import { U7sError, UsageError } from "../errors.ts";
import { runSteps } from "../steps.ts";
import { clusterContext, joinedNote, loadJoinFile } from "./_cluster.ts";
import { nodeLock } from "./_node.ts";
import { clusterOptions, waitOption } from "./_cluster-flags.ts";
import type { CommandDef } from "./_types.ts";

/** kubeadmJoin joins the running node to a cluster with a join file from `u7s join-command`. */
export const kubeadmJoin: CommandDef = {
  name: "kubeadm-join",
  group: "cluster",
  summary: "join this node to a cluster with a join file (u7s's, or upstream's join-command)",
  usage: "FILE [flags]",
  description:
    "Validates FILE first (a malformed or tampered file, a PORT_FLANNEL other than the cluster's or the control\n" +
    "plane's NODE_SUBNET are refused with exit code 2 and nothing changed; so are a FIFO, device or directory,\n" +
    "without waiting on it, and a file over 64 KiB), records the control plane's\n" +
    "HOST_IP and NODE_NAME in the node (/etc/u7s/hosts, and /etc/hosts.u7s as upstream keeps it; kept across\n" +
    "restarts), then runs `kubeadm join` with the file's arguments. A u7s control plane syncs the new node's\n" +
    "external IP by itself. On a joined node it succeeds without joining again.\n" +
    "FILE may be upstream Usernetes's join-command script (from its `make join-command`): u7s reads it as data,\n" +
    "never runs it, and accepts only its template's lines (the hosts entry, one `kubeadm join` with --token and\n" +
    "--discovery-token-ca-cert-hash); another command, shell syntax or flag is refused naming the line. It does\n" +
    "not carry the cluster's PORT_FLANNEL (upstream's default 8472 is assumed: a warning when this host's differs)\n" +
    "or NODE_SUBNET. An upstream control plane does not sync a new node: run `make sync-external-ip` there.\n" +
    "Then it waits until the node is Ready (--wait, default 5m; 0 returns at once), saying what it waits for;\n" +
    "on timeout it fails with the node's conditions and its Flannel pod's last events.",
  settings: true,
  options: { ...waitOption },
  maxPositionals: 1,
  examples: ["u7s kubeadm-join join.json", "u7s kubeadm-join ~/usernetes/join-command"],
  async run(ctx, args) {
    const path = args.positionals[0];
    if (path === undefined) throw new UsageError("u7s kubeadm-join: no join file given (usage: u7s kubeadm-join FILE)", { hint: "make one with `u7s join-command` on the control plane's host" });
    const opts = clusterOptions(args, ctx.env);
    const config = await ctx.config();
    const file = await loadJoinFile(path, config, ctx.log);
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
      ctx.log.info(joinedNote(config.nodeName, file));
    });
  },
};
