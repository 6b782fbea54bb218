import { downNode } from "../node/lifecycle.ts";
import { boolFlag, dryRunFlag } from "./_shared.ts";
import { applierFor, nodeContext } from "./_node.ts";
import type { Args, CommandDef, Ctx } from "./_types.ts";

async function runDown(ctx: Ctx, args: Args, volumes: boolean) {
  const { config, engine } = await nodeContext(ctx);
  await downNode({ config, engine, log: ctx.log, applier: applierFor(ctx, args) }, { volumes });
}

/** down removes the node container and network; -v also its volumes. */
export const down: CommandDef = {
  name: "down",
  group: "node",
  summary: "stop and remove the node (-v: and its volumes)",
  description: "Removes the node container and its network; the volumes (/var, /opt, /etc: the cluster's state) are\nkept unless -v is given. Does nothing, successfully, when there is nothing to remove.",
  settings: true,
  options: {
    volumes: { type: "boolean", short: "v", description: "also remove the node's volumes (all cluster state on this host)" },
    ...dryRunFlag,
  },
  examples: ["u7s down", "u7s down -v", "u7s down -v --dry-run"],
  run: (ctx, args) => runDown(ctx, args, boolFlag(args, "volumes")),
};

/** downV is upstream's `make down-v`: the same as `down -v`. */
export const downV: CommandDef = {
  ...down,
  name: "down-v",
  summary: "same as `down -v` (upstream's name)",
  description: "Upstream's `make down-v`: removes the node container, its network and its volumes.",
  options: dryRunFlag,
  examples: ["u7s down-v"],
  run: (ctx, args) => runDown(ctx, args, true),
};
