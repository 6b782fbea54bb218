import { statfsSync } from "node:fs";
import { runDoctor, type Check, type DoctorReport } from "../host/doctor.ts";
import { nodeJobProbe, runJobDoctor } from "../host/doctor-job.ts";
import { boolFlag, jsonFlag, stringFlag } from "./_shared.ts";
import { otherEngines } from "../engine/detect.ts";
import { UsageError } from "../errors.ts";
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
    "lower) against the nodes running plus one, about 6 instances each (measured on a bare node), and the\n" +
    "user's kernel key quota (kernel.keys.maxkeys, maxbytes; its use from /proc/key-users) against one more\n" +
    "node, about 6 keys each. Each check\n" +
    "is ok, warn or fail; every warning and failure comes with the command that fixes it on this host's\n" +
    "distribution (Debian/Ubuntu, Fedora/RHEL, SUSE, Arch).\n" +
    "Exits 1 when a check fails. `u7s init-host` applies the fixes.\n\n" +
    "With --job, checks this host for a batch job's cluster (`u7s up --job`: no systemd session, a private\n" +
    "engine in node-local scratch) instead: sub-IDs, newuidmap, user namespaces, this process's own cgroup\n" +
    "delegated (a job's cgroup is the scheduler's, not a login session's), an engine u7s can start without\n" +
    "systemd (dockerd-rootless.sh with RootlessKit, or Podman), the scratch directory (--scratch, default\n" +
    "$TMPDIR or /tmp) on node-local disk (statfs: not NFS, Lustre, GPFS, BeeGFS, CephFS, SMB, FUSE...) with room\n" +
    "for the node image, and the home (it may be shared: the join file and kubeconfig travel there). Run it\n" +
    "inside the job, on each host (`srun u7s doctor --job`).",
  settings: true,
  options: {
    ...jsonFlag,
    job: { type: "boolean", description: "check this host for a batch job's cluster (u7s up --job) instead" },
    scratch: { type: "string", value: "DIR", description: "--job: the node-local directory the job's scratch goes in (default $TMPDIR or /tmp)" },
  },
  examples: ["u7s doctor", "u7s doctor --json | jq -r '.checks[] | select(.level != \"ok\") | .fix'", "srun u7s doctor --job --scratch /local/scratch"],
  async run(ctx, args) {
    const config = await ctx.config();
    let report: DoctorReport;
    if (!boolFlag(args, "job") && stringFlag(args, "scratch") !== undefined) throw new UsageError("--scratch goes with --job", { hint: "u7s doctor --job --scratch DIR" });
    if (boolFlag(args, "job")) {
      report = await runJobDoctor({ config, host: ctx.host, probe: nodeJobProbe, env: ctx.env, scratch: stringFlag(args, "scratch") });
    } else {
      const engine = config.containerEngine === undefined ? undefined : await ctx.engine();
      const others = engine ? otherEngines(config, ctx.runner, (b) => ctx.host.which(b)) : [];
      report = await runDoctor({ config, engine, host: ctx.host, runner: ctx.runner, env: ctx.env, others, freeBytes });
    }
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
