import { dryRunApplier, realApplier, type Applier } from "../apply.ts";
import type { NodeConfig } from "../config/resolve.ts";
import { engineNote } from "../engine/detect.ts";
import { CLOCK_TICKS, pidAlive, withNodeLock } from "../state/lock.ts";
import { statePaths } from "../state/paths.ts";
import type { Args, Ctx } from "./_types.ts";
import { boolFlag } from "./_shared.ts";

/** applierFor picks the real applier, or the printing one for --dry-run. */
export function applierFor(ctx: Ctx, args: Args): Applier {
  return boolFlag(args, "dry-run") ? dryRunApplier(ctx.out) : realApplier(ctx.runner, ctx.log, ctx.debug);
}

/** nodeContext resolves settings and engine for a node command, noting an engine override once. */
export async function nodeContext(ctx: Ctx) {
  const config = await ctx.config();
  const engine = await ctx.engine();
  const note = engineNote(config);
  if (note) ctx.log.info(note);
  return { config, engine };
}

/**
 * nodeLock runs fn holding this node's lock (lib/state/lock.ts), so that two commands changing the
 * same node (`u7s up` twice, `up` and `down`, kubeadm-init and down) run one after the other. The
 * lock lives under XDG_STATE_HOME per real host name and node; command names the holder in messages
 * and is how a holder's process is recognised as u7s (lib/state/lock.ts, staleReason).
 */
export async function nodeLock<T>(ctx: Ctx, config: Pick<NodeConfig, "nodeName">, command: string, fn: () => Promise<T>): Promise<T> {
  const path = statePaths(ctx.env, ctx.host.hostname(), config.nodeName).lock;
  // the holder's /proc files through the host probe: in-process tests see no /proc, and wait as before
  const proc = { alive: pidAlive, readFile: (p: string) => ctx.host.readFile(p), clockTicks: CLOCK_TICKS };
  return withNodeLock({ path, host: ctx.host.hostname(), command, log: ctx.log, proc }, fn);
}
