import { U7sError, UsageError } from "../errors.ts";
import { nodeNames } from "../node/names.ts";
import { nodeContext } from "./_node.ts";
import { boolFlag, stringFlag } from "./_shared.ts";
import type { CommandDef } from "./_types.ts";

/** logs shows the node's journal (journald in the node), or the engine's log when the node is not running. */
export const logs: CommandDef = {
  name: "logs",
  group: "node",
  summary: "show the node's journal (-f to follow)",
  description: "Shows journald's log inside the node (kubelet, containerd, ...). When the node is not running, shows\nthe engine's log of the node container instead.",
  settings: true,
  options: {
    follow: { type: "boolean", short: "f", description: "keep printing new lines" },
    lines: { type: "string", short: "n", value: "N", description: "how many recent lines to show (default 200)" },
    unit: { type: "string", short: "u", value: "UNIT", description: "only this systemd unit, e.g. kubelet" },
  },
  examples: ["u7s logs", "u7s logs -f -u kubelet", "u7s logs -n 50"],
  async run(ctx, args) {
    const linesFlag = stringFlag(args, "lines") ?? "200";
    if (!/^[0-9]+$/.test(linesFlag)) throw new UsageError(`--lines=${JSON.stringify(linesFlag)}: not a number of lines (valid: 0 or more)`);
    const unit = stringFlag(args, "unit");
    if (unit !== undefined && !/^[A-Za-z0-9@._:-]+$/.test(unit)) throw new UsageError(`--unit=${JSON.stringify(unit)}: not a systemd unit name`);
    const { config, engine } = await nodeContext(ctx);
    const name = nodeNames(config).container;
    const state = await engine.inspectContainer(name);
    if (!state) throw new U7sError(`node ${name} does not exist`, { hint: "create it with `u7s up`" });
    const follow = boolFlag(args, "follow");
    const argv = state.running
      ? engine.execArgs(name, ["journalctl", "--no-pager", "-n", linesFlag, ...(follow ? ["-f"] : []), ...(unit ? ["-u", unit] : [])])
      : engine.logsArgs(name, { follow, tail: Number(linesFlag) });
    if (!state.running) ctx.log.info(`node ${name} is not running (status ${state.status}); showing the engine's log`);
    return (await ctx.runner(argv, { inherit: true })).exitCode;
  },
};
