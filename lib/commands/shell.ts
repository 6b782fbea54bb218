import { runningNode, shellEnv } from "../node/lifecycle.ts";
import { nodeNames } from "../node/names.ts";
import { nodeContext } from "./_node.ts";
import type { CommandDef } from "./_types.ts";

/** shell opens bash in the node with upstream's variables set. */
export const shell: CommandDef = {
  name: "shell",
  group: "node",
  summary: "open a shell in the node",
  description: "Runs bash in the node with HOST_IP, NODE_NAME, NODE_SUBNET, NODE_IP and the PORT_* variables set\n(also as U7S_-prefixed names, as upstream's `make shell` does).",
  settings: true,
  examples: ["u7s shell"],
  async run(ctx) {
    const { config, engine } = await nodeContext(ctx);
    await runningNode(config, engine);
    const argv = engine.execArgs(nodeNames(config).container, ["bash", "-l"], {
      interactive: true,
      tty: ctx.stdinIsTTY,
      env: shellEnv(config),
    });
    return (await ctx.runner(argv, { inherit: true })).exitCode;
  },
};
