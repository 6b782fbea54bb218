import { runPreflight } from "../host/preflight.ts";
import { boolFlag, jsonFlag } from "./_shared.ts";
import { otherEngines } from "../engine/detect.ts";
import type { CommandDef } from "./_types.ts";

/** checkPreflight runs upstream's host and engine checks, offline; errors exit 1, warnings do not. */
export const checkPreflight: CommandDef = {
  name: "check-preflight",
  group: "node",
  summary: "check that this host and engine can run a node",
  description:
    "Checks the engine (present, answering, rootless), cgroup delegation, linger, kernel modules, rp_filter in\n" +
    "the engine's network namespace and the node's ports. Pulls nothing. Errors exit 1, each with a hint;\n" +
    "warnings (e.g. cgroup v1: no resource limits) do not fail. `u7s up` runs the same host checks first\n" +
    "(the engine and the ports it checks its own way).",
  settings: true,
  options: jsonFlag,
  examples: ["u7s check-preflight", "u7s check-preflight --json"],
  async run(ctx, args) {
    const config = await ctx.config();
    const engine = config.containerEngine === undefined ? undefined : await ctx.engine();
    const others = engine ? otherEngines(config, ctx.runner, (b) => ctx.host.which(b)) : [];
    const findings = await runPreflight({ config, engine, host: ctx.host, runner: ctx.runner, env: ctx.env, others });
    const errors = findings.filter((f) => f.level === "error").length;
    if (boolFlag(args, "json")) {
      ctx.out.write(`${JSON.stringify({ ok: errors === 0, findings }, null, 2)}\n`);
    } else {
      for (const f of findings) {
        const mark = f.level === "ok" ? "✓" : f.level === "warn" ? "!" : "✗";
        ctx.out.write(` ${mark} ${f.message}\n`);
        if (f.hint && f.level !== "ok") ctx.out.write(`   hint: ${f.hint}\n`);
      }
      const warns = findings.filter((f) => f.level === "warn").length;
      ctx.out.write(`preflight: ${errors} error(s), ${warns} warning(s)\n`);
    }
    return errors > 0 ? 1 : 0;
  },
};
