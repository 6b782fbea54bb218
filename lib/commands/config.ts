import { configEntries } from "../config/resolve.ts";
import { boolFlag, jsonFlag } from "./_shared.ts";
import type { CommandDef } from "./_types.ts";

/** config prints the resolved settings under upstream's variable names. */
export const config: CommandDef = {
  name: "config",
  group: "info",
  summary: "print the resolved settings (NAME=value, or --json)",
  description:
    "Each value is the command-line flag, else the environment variable of that name, else derived as upstream\n" +
    "Usernetes does. Works without a container engine (CONTAINER_ENGINE is then empty and a warning says why).",
  settings: true,
  options: jsonFlag,
  examples: ["u7s config", "u7s config --json | jq -r .NODE_SUBNET", "NODE_NAME=u7s-a u7s config --port-etcd 12379", "u7s config --tenant 3"],
  async run(ctx, args) {
    const c = await ctx.config();
    if (c.engineNotFound) ctx.log.warn(c.engineNotFound);
    for (const w of c.warnings ?? []) ctx.log.warn(w);
    const entries = configEntries(c);
    if (boolFlag(args, "json")) {
      const obj: Record<string, string | number | null> = {};
      for (const [k, v] of entries) obj[k] = k.startsWith("PORT_") || k === "U7S_TENANT" ? Number(v) : v === "" ? null : v;
      ctx.out.write(`${JSON.stringify(obj, null, 2)}\n`);
    } else {
      ctx.out.write(entries.map(([k, v]) => `${k}=${v}\n`).join(""));
    }
  },
};
