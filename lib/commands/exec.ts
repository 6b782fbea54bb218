import { UsageError } from "../errors.ts";
import { runningNode, shellEnv } from "../node/lifecycle.ts";
import { nodeNames } from "../node/names.ts";
import { nodeContext } from "./_node.ts";
import type { CommandDef } from "./_types.ts";

/** exec runs a command in the node and exits with its exit code. */
export const exec: CommandDef = {
  name: "exec",
  group: "node",
  summary: "run a command in the node",
  usage: "[flags] -- CMD [ARG...]",
  description: "Runs CMD in the node with upstream's variables set (see `u7s shell --help`); stdin is passed through.\nThe exit code is CMD's.",
  settings: true,
  options: {
    tty: { type: "boolean", short: "t", description: "allocate a terminal (default: when stdin is one)" },
  },
  examples: ["u7s exec -- systemctl is-system-running", "u7s exec -- kubectl get nodes", "echo hi | u7s exec -- cat"],
  async run(ctx, args) {
    if (args.rest.length === 0) {
      throw new UsageError("u7s exec: no command given (usage: u7s exec -- CMD [ARG...])");
    }
    const { config, engine } = await nodeContext(ctx);
    await runningNode(config, engine);
    const argv = engine.execArgs(nodeNames(config).container, args.rest, {
      interactive: true,
      tty: args.values.tty === true || ctx.stdinIsTTY,
      env: shellEnv(config),
    });
    return (await ctx.runner(argv, { inherit: true })).exitCode;
  },
};
