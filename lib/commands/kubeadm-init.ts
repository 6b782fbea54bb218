import { initSteps, waitStep } from "../cluster/bringup.ts";
import { nodeRole } from "../cluster/node.ts";
import { U7sError } from "../errors.ts";
import { runSteps } from "../steps.ts";
import { clusterContext } from "./_cluster.ts";
import { nodeLock } from "./_node.ts";
import { clusterOptions, controlPlaneTaintOption, waitOption } from "./_cluster-flags.ts";
import type { CommandDef } from "./_types.ts";

/** kubeadmInit initialises the control plane in the running node, then syncs external IPs. */
export const kubeadmInit: CommandDef = {
  name: "kubeadm-init",
  group: "cluster",
  summary: "initialize the control plane in the node (kubeadm init, then sync-external-ip)",
  description:
    "Hands the node the kubeadm configuration `u7s render kubeadm-config` prints (through exec's stdin), runs\n" +
    "`kubeadm init`, removes kubeadm's node-role.kubernetes.io/control-plane:NoSchedule taint (kept with\n" +
    "--control-plane-taint), sets every node's ExternalIP from its host IP and starts a service in the node that\n" +
    "keeps joining nodes synced. Then it waits (--wait, default 5m; 0 returns at once) until the node is Ready,\n" +
    "or registered and lacking only its network: it is Ready once `u7s install-flannel` ran. If kubeadm init\n" +
    "fails, `kubeadm reset` undoes what it began. On an initialised node it says so and succeeds.",
  settings: true,
  options: { ...controlPlaneTaintOption, ...waitOption },
  examples: ["u7s kubeadm-init"],
  async run(ctx, args) {
    const opts = clusterOptions(args, ctx.env);
    const { env } = await clusterContext(ctx);
    await nodeLock(ctx, env.config, "u7s kubeadm-init", async () => {
      const role = await nodeRole(env);
      if (role === "control-plane") {
        ctx.log.info(`node ${env.config.nodeName} is already initialised (nothing to do)`);
        return;
      }
      if (role === "worker") {
        throw new U7sError(`node ${env.config.nodeName} is a worker joined to a cluster; it cannot also be initialised`, {
          hint: "run `u7s kubeadm-reset` first to leave that cluster",
        });
      }
      await runSteps(ctx.log, [...initSteps(env, ctx.debug, opts.keepTaint), waitStep(env, opts, "control-plane", true)]);
      ctx.log.info(`control plane ${env.config.nodeName} is initialised; next: \`u7s install-flannel\`, \`u7s kubeconfig\``);
    });
  },
};
