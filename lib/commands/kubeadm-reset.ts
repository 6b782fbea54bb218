import { SAVED_HOSTS_FILE, UPSTREAM_HOSTS_FILE } from "../assets.ts";
import { removeSyncService } from "../cluster/external-ip.ts";
import { kubeadmReset as reset } from "../cluster/kubeadm.ts";
import { inNode, KUBEADM_CONFIG_PATH, nodeRole } from "../cluster/node.ts";
import { runSteps, type Step } from "../steps.ts";
import { clusterContext } from "./_cluster.ts";
import { removeCredentials } from "./_credentials.ts";
import { nodeLock } from "./_node.ts";
import type { CommandDef } from "./_types.ts";

/** kubeadmReset undoes kubeadm-init or kubeadm-join and removes u7s's cluster files for this node. */
export const kubeadmReset: CommandDef = {
  name: "kubeadm-reset",
  group: "cluster",
  summary: "undo kubeadm-init or kubeadm-join (kubeadm reset) and remove u7s's cluster files",
  description:
    "Runs `kubeadm reset --force` in the node, stops the external-IP sync service, removes the kubeadm\n" +
    "configuration and the saved control-plane address in the node (/etc/u7s/hosts and /etc/hosts.u7s), and\n" +
    "this node's kubeconfig and join files on the host and its entries in the merged kubeconfig (as `u7s down -v`\n" +
    "does). The node container and its volumes stay (`u7s down -v` removes those). Safe to re-run.",
  settings: true,
  examples: ["u7s kubeadm-reset"],
  async run(ctx) {
    const { env } = await clusterContext(ctx);
    await nodeLock(ctx, env.config, "u7s kubeadm-reset", async () => {
      const role = await nodeRole(env);
      const steps: Step[] = [];
      // The sync service first: it would keep asking an apiserver that kubeadm reset is stopping.
      if (role === "control-plane") steps.push({ title: "Removing the external-IP sync service", run: () => removeSyncService(env) });
      if (role !== "none") steps.push({ title: "Resetting the node (kubeadm reset)", doing: "cannot reset the node", run: () => reset(env) });
      steps.push({
        title: "Removing u7s's cluster files in the node",
        run: async () => {
          await inNode(env, ["rm", "-f", KUBEADM_CONFIG_PATH, SAVED_HOSTS_FILE, UPSTREAM_HOSTS_FILE]);
        },
      });
      if (role === "none") ctx.log.info(`node ${env.config.nodeName} is not in a cluster; removing leftover files only`);
      await runSteps(ctx.log, steps);
      await removeCredentials(ctx, env.config);
    });
  },
};
