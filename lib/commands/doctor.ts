import { statfsSync } from "node:fs";
import { runDoctor, type Check } from "../host/doctor.ts";
import { boolFlag, jsonFlag } from "./_shared.ts";
import { otherEngines } from "../engine/detect.ts";
import type { CommandDef } from "./_types.ts";

/** freeBytes is the space an unprivileged user may still use in a directory's file system. */
export function freeBytes(path: string): number | undefined {
  try {
    const s = statfsSync(path);
    return Number(s.bavail) * Number(s.bsize);
  } catch {
    return undefined;
  }
}

const MARK: Record<Check["level"], string> = { ok: "✓", warn: "!", fail: "✗" };

/** doctor checks every host prerequisite, offline, and prints the exact fix for this distribution. */
export const doctor: CommandDef = {
  name: "doctor",
  group: "node",
  summary: "check every host prerequisite and print the exact fix for this distribution",
  description:
    "Checks, offline and without changing anything: sub-IDs (/etc/subuid, /etc/subgid), newuidmap/newgidmap,\n" +
    "unprivileged user namespaces (and Ubuntu 24.04's AppArmor restriction), cgroup v2 controller delegation\n" +
    "(cgroup v1: a warning), linger, kernel modules, slirp4netns, the user D-Bus session, disk space for the\n" +
    "node image, and the engine: installed, answering, rootless, rp_filter in its network namespace, its rootless\n" +
    "network (slirp4netns, or pasta: Podman 5's default, Podman 6's only one, RootlessKit 2's option; under pasta\n" +
    "the API server cannot reach kubelets at host IPs unless pasta has an address of its own: Podman's\n" +
    "pasta_options -a 10.0.2.100 -n 24 -g 10.0.2.2), podman-restart.service, free ports, and the user's inotify\n" +
    "limits (fs.inotify.max_user_instances, max_user_watches; or the engine's user namespace's own, when\n" +
    "lower) against the nodes running plus one, about 6 instances each (measured on a bare node). Each check\n" +
    "is ok, warn or fail; every warning and failure comes with the command that fixes it on this host's\n" +
    "distribution (Debian/Ubuntu, Fedora/RHEL, SUSE, Arch).\n" +
    "Exits 1 when a check fails. `u7s init-host` applies the fixes.",
  settings: true,
  options: jsonFlag,
  examples: ["u7s doctor", "u7s doctor --json | jq -r '.checks[] | select(.level != \"ok\") | .fix'"],
  async run(ctx, args) {
    const config = await ctx.config();
    const engine = config.containerEngine === undefined ? undefined : await ctx.engine();
    const others = engine ? otherEngines(config, ctx.runner, (b) => ctx.host.which(b)) : [];
    const report = await runDoctor({ config, engine, host: ctx.host, runner: ctx.runner, env: ctx.env, others, freeBytes });
    if (boolFlag(args, "json")) {
      ctx.out.write(`${JSON.stringify(report, null, 2)}\n`);
      return report.ok ? 0 : 1;
    }
    for (const c of report.checks) {
      ctx.out.write(` ${MARK[c.level]} ${c.message}\n`);
      if (c.fix && c.level !== "ok") ctx.out.write(`   fix: ${c.fix}\n`);
    }
    const count = (l: Check["level"]) => report.checks.filter((c) => c.level === l).length;
    ctx.out.write(`doctor: ${count("fail")} failed, ${count("warn")} warning(s), ${count("ok")} ok\n`);
    return report.ok ? 0 : 1;
  },
};
