import { dryRunApplier, realApplier, type Applier } from "../apply.ts";
import { engineNote } from "../engine/detect.ts";
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
