import type { ClusterOptions } from "../cluster/bringup.ts";
import { UsageError } from "../errors.ts";
import { boolFlag, stringFlag } from "./_shared.ts";
import type { Args, OptionDef } from "./_types.ts";

/** CONTROL_PLANE_TAINT_ENV keeps the control plane's taint when set to 1 or true (flag: --control-plane-taint). */
export const CONTROL_PLANE_TAINT_ENV = "U7S_CONTROL_PLANE_TAINT";
/** DEFAULT_WAIT is how long up, kubeadm-init and kubeadm-join wait for the node to be Ready. */
export const DEFAULT_WAIT = "5m";

/** waitOption is --wait DURATION of up, kubeadm-init and kubeadm-join. */
export const waitOption: Record<string, OptionDef> = {
  wait: { type: "string", value: "DURATION", description: `wait this long for this node to be Ready, e.g. 90s, 10m (default ${DEFAULT_WAIT}; 0 returns at once)` },
};

/** controlPlaneTaintOption is --control-plane-taint of up and kubeadm-init. */
export const controlPlaneTaintOption: Record<string, OptionDef> = {
  "control-plane-taint": {
    type: "boolean",
    description: `keep kubeadm's taint node-role.kubernetes.io/control-plane:NoSchedule on a new control plane: ordinary pods run only on workers (overrides ${CONTROL_PLANE_TAINT_ENV})`,
  },
};

const DURATION = /^(?:([0-9]+(?:\.[0-9]+)?)(h|m|s))+$/;
const UNIT_SECONDS: Record<string, number> = { h: 3600, m: 60, s: 1 };

/** parseDuration reads a Go-style duration (90s, 5m, 1h30m; a bare number is seconds; 0 is none) into seconds, undefined when it is not one. */
export function parseDuration(text: string): number | undefined {
  if (/^[0-9]+(\.[0-9]+)?$/.test(text)) return Number(text);
  if (!DURATION.test(text)) return undefined;
  let seconds = 0;
  for (const [, n, unit] of text.matchAll(/([0-9]+(?:\.[0-9]+)?)(h|m|s)/g)) seconds += Number(n) * UNIT_SECONDS[unit!]!;
  return seconds;
}

/** keepTaint reads --control-plane-taint, else U7S_CONTROL_PLANE_TAINT (1/true/yes keep it, 0/false/no or unset remove it). */
export function keepTaint(args: Args, env: Readonly<Record<string, string | undefined>>): boolean {
  if (boolFlag(args, "control-plane-taint")) return true;
  const v = (env[CONTROL_PLANE_TAINT_ENV] ?? "").trim().toLowerCase();
  if (["", "0", "false", "no"].includes(v)) return false;
  if (["1", "true", "yes"].includes(v)) return true;
  throw new UsageError(`${CONTROL_PLANE_TAINT_ENV}=${JSON.stringify(env[CONTROL_PLANE_TAINT_ENV])}: not a boolean (valid: 1, true, yes to keep the taint; 0, false, no or unset to remove it)`);
}

/** clusterOptions reads --wait and the taint choice into ClusterOptions; a bad value is a UsageError naming it. */
export function clusterOptions(args: Args, env: Readonly<Record<string, string | undefined>>): ClusterOptions {
  const waitText = stringFlag(args, "wait") ?? DEFAULT_WAIT;
  const waitSeconds = parseDuration(waitText);
  if (waitSeconds === undefined) throw new UsageError(`--wait=${JSON.stringify(waitText)}: not a duration (valid: e.g. 90s, 5m, 1h30m, a number of seconds, or 0 to not wait)`);
  return { keepTaint: keepTaint(args, env), waitSeconds, waitText };
}
