import { flannelStep } from "../cluster/bringup.ts";
import { runSteps } from "../steps.ts";
import { clusterContext, requireControlPlane } from "./_cluster.ts";
import type { CommandDef } from "./_types.ts";

/** installFlannel installs the Flannel CNI from the chart in the node image. */
export const installFlannel: CommandDef = {
  name: "install-flannel",
  group: "cluster",
  summary: "install the Flannel CNI with Helm (backend port PORT_FLANNEL)",
  description:
    "Creates namespace kube-flannel (labelled pod-security.kubernetes.io/enforce=privileged) and runs\n" +
    "`helm upgrade --install` of the Flannel chart in the node image with flannel.backendPort=PORT_FLANNEL.\n" +
    "On a multi-node cluster it refuses while a node's external IP is not synced (Flannel would announce the\n" +
    "unroutable node IP). A second run with the same port changes nothing.",
  settings: true,
  examples: ["u7s install-flannel"],
  async run(ctx) {
    const { env } = await clusterContext(ctx);
    await requireControlPlane(env, "install-flannel");
    await runSteps(ctx.log, [flannelStep(env)]);
  },
};
