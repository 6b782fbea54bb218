import { GLOBAL_OPTIONS } from "../cli.ts";
import { completionScript, SHELLS, type Shell } from "../completion.ts";
import { UsageError } from "../errors.ts";
import type { CommandDef } from "./_types.ts";

/** completion prints a shell completion script generated from the command table. */
export const completion: CommandDef = {
  name: "completion",
  group: "info",
  summary: "print a shell completion script (bash, zsh or fish)",
  usage: SHELLS.join("|"),
  description: "Generated from u7s's own command table: every command, alias and flag, file names for FILE values,\nand fixed arguments such as render's targets.",
  maxPositionals: 1,
  examples: ["source <(u7s completion bash)", "u7s completion zsh > \"${fpath[1]}/_u7s\"", "u7s completion fish > ~/.config/fish/completions/u7s.fish"],
  async run(ctx, args) {
    const shell = args.positionals[0];
    if (!(SHELLS as readonly string[]).includes(shell ?? "")) {
      throw new UsageError(`u7s completion: ${shell === undefined ? "which shell?" : `unknown shell ${JSON.stringify(shell)}`} (valid: ${SHELLS.join(", ")})`, { hint: "e.g. `source <(u7s completion bash)`" });
    }
    // loaded here: _registry.ts imports this module, which runs before it when loaded on its own (_index.ts)
    const { COMMANDS } = await import("./_registry.ts");
    ctx.out.write(completionScript(shell as Shell, { commands: COMMANDS, globals: GLOBAL_OPTIONS }));
  },
};
