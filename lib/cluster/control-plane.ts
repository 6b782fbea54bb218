// A schedulable control plane: kubeadm's mark-control-plane phase taints the node
// node-role.kubernetes.io/control-plane:NoSchedule, so on a one-host cluster no ordinary pod would
// ever run. Upstream's README and CI remove it (`kubectl taint nodes --all
// node-role.kubernetes.io/control-plane-`), and kind does when a cluster has no workers; u7s removes
// it from the control plane it initialises unless told to keep it. Nothing adds it back: kubeadm
// join taints only a joining control plane, and the sync service touches no taint but the cloud
// provider's uninitialized one.
import type { Step } from "../steps.ts";
import { kubectl, type ClusterEnv } from "./node.ts";
import { parseNode } from "./ready.ts";

/** CONTROL_PLANE_TAINT is the taint key kubeadm puts on a control-plane node (effect NoSchedule). */
export const CONTROL_PLANE_TAINT = "node-role.kubernetes.io/control-plane";

/** removeControlPlaneTaint removes the control-plane NoSchedule taint from this node; it returns false when the node had none. */
export async function removeControlPlaneTaint(env: ClusterEnv): Promise<boolean> {
  const name = env.config.nodeName;
  const node = parseNode(await kubectl(env, ["get", "node", name, "-o", "json"]));
  if (!node.taints.some((t) => t.key === CONTROL_PLANE_TAINT && t.effect === "NoSchedule")) return false;
  await kubectl(env, ["taint", "nodes", name, `${CONTROL_PLANE_TAINT}:NoSchedule-`]);
  return true;
}

/** untaintStep makes the new control plane schedulable, or says it keeps the taint (--control-plane-taint). */
export function untaintStep(env: ClusterEnv, keepTaint: boolean): Step {
  return {
    title: `Making the control plane schedulable (removing taint ${CONTROL_PLANE_TAINT}:NoSchedule)`,
    doing: "cannot remove the control plane's taint",
    skip: async () => (keepTaint ? "kept (--control-plane-taint): pods without a toleration run only on workers" : undefined),
    run: async () => {
      if (!(await removeControlPlaneTaint(env))) env.log.info(`   node ${env.config.nodeName} had no such taint`);
    },
  };
}
