import { describe, expect, test } from "bun:test";
import { resolveNodeConfig } from "../../../lib/config/resolve.ts";
import { U7sError } from "../../../lib/errors.ts";
import { checkScratch, jobCgroupDirs, parseProcCgroup, runJobDoctor, type JobProbe } from "../../../lib/host/doctor-job.ts";
import type { StatFs } from "../../../lib/host/fs-kind.ts";
import { runCli } from "../../fixtures/fakes.ts";
import { recordedHost } from "./recorded-host.ts";

const GiB = 2 ** 30;
// statfs f_type values (statfs(2), linux/magic.h; Lustre's and GPFS's own headers)
const TMPFS = 0x01021994;
const EXT4 = 0xef53;
const NFS = 0x6969;
const LUSTRE = 0x0bd00bd0;
const GPFS = 0x47504653;

/** probe answers statfs from a table (a missing path fails as statfs does) and W_OK for the listed paths. */
function probe(fs: Record<string, StatFs>, writable: readonly string[]): JobProbe {
  return {
    statfs: (p) => {
      const s = fs[p];
      if (!s) throw new U7sError(`statfs ${p}: no such file or directory (ENOENT)`);
      return s;
    },
    writable: (p) => writable.includes(p),
  };
}

const HOST_E_CGROUPS = ["/sys/fs/cgroup/systemd/u7s-u7sjob-host-e", "/sys/fs/cgroup/unified/u7s-u7sjob-host-e"];
const HOST_E_WRITABLE = [...HOST_E_CGROUPS, ...HOST_E_CGROUPS.map((d) => `${d}/cgroup.procs`), "/tmp"];
const SLURM_TASK = "/sys/fs/cgroup/system.slice/slurmstepd.scope/job_4242/step_0/user/task_0";

async function doctorOn(name: string, p: JobProbe, env: Record<string, string> = {}, scratch?: string) {
  const { host, info } = recordedHost(name);
  const fullEnv = { HOME: info.home, USER: info.user.name, ...env };
  const config = await resolveNodeConfig({ flags: {}, env: fullEnv, host });
  return runJobDoctor({ config, host, probe: p, env: fullEnv, scratch });
}

describe("parseProcCgroup and jobCgroupDirs", () => {
  test("cgroup v1 hybrid (test host E): the name=systemd and unified hierarchies' directories", () => {
    const { host } = recordedHost("valid-job-host-e");
    const lines = parseProcCgroup(host.readFile("/proc/self/cgroup")!);
    expect(lines.find((l) => l.id === "0")).toEqual({ id: "0", controllers: [], path: "/u7s-u7sjob-host-e" });
    expect(jobCgroupDirs(lines, host)).toEqual(HOST_E_CGROUPS);
  });
  test("cgroup v2 (a Slurm job step): the one unified directory", () => {
    const { host } = recordedHost("invalid-job-slurm-cgroup-v2");
    expect(jobCgroupDirs(parseProcCgroup(host.readFile("/proc/self/cgroup")!), host)).toEqual([SLURM_TASK]);
  });
  test("the root cgroup has no trailing slash", () => {
    expect(jobCgroupDirs(parseProcCgroup("0::/\n"), { exists: (p) => p === "/sys/fs/cgroup/cgroup.controllers" })).toEqual(["/sys/fs/cgroup"]);
  });
});

describe("runJobDoctor", () => {
  test("test host E, as the job sees it: every check ok, the host named", async () => {
    const r = await doctorOn("valid-job-host-e", probe({ "/tmp": { magic: TMPFS, availableBytes: 11 * GiB }, "/home/u7sjob": { magic: EXT4, availableBytes: 50 * GiB } }, HOST_E_WRITABLE));
    expect(r.checks.filter((c) => c.level !== "ok")).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.host).toBe("node-a");
    expect(r.scratch).toBe("/tmp");
    expect(r.checks.map((c) => c.id)).toEqual(["job-host", "subids", "idmap", "userns", "job-cgroup", "job-engine", "job-scratch", "job-scratch-space", "job-home", "job-runtime-dir"]);
    const msg = (id: string) => r.checks.find((c) => c.id === id)!.message;
    expect(msg("job-cgroup")).toBe(`this job's cgroup is delegated to u7sjob: ${HOST_E_CGROUPS.join(", ")}`);
    expect(msg("job-engine")).toStartWith("a private rootless Docker can start without systemd: /usr/bin/dockerd-rootless.sh");
    expect(msg("job-scratch")).toBe("scratch directory /tmp is on tmpfs (node-local)");
    expect(msg("job-runtime-dir")).toStartWith("no XDG_RUNTIME_DIR (no systemd user session");
  });

  test("a Slurm job step whose cgroup is slurmstepd's: the job cgroup check fails with the directory and a fix", async () => {
    const r = await doctorOn("invalid-job-slurm-cgroup-v2", probe({ "/tmp": { magic: EXT4, availableBytes: 100 * GiB }, "/home/dave": { magic: NFS, availableBytes: GiB } }, ["/tmp"]));
    const c = r.checks.find((x) => x.id === "job-cgroup")!;
    expect(c.level).toBe("fail");
    expect(c.message).toContain(`this job's own cgroup is not delegated to dave: ${SLURM_TASK} not writable`);
    expect(c.message).toContain("usernetes #372");
    expect(c.fix).toContain("Delegate=yes");
    expect(r.ok).toBe(false);
    // the home on NFS is fine: it only carries the join file and the kubeconfig
    expect(r.checks.find((x) => x.id === "job-home")).toMatchObject({ level: "ok", message: expect.stringContaining("home /home/dave is on nfs, shared between hosts") });
    expect(r.checks.find((x) => x.id === "job-engine")!.message).toBe("a private Podman needs no daemon: /usr/bin/podman");
  });

  test("the same step with its cgroup delegated: ok, with the controllers it got", async () => {
    const r = await doctorOn("invalid-job-slurm-cgroup-v2", probe({ "/tmp": { magic: EXT4, availableBytes: 100 * GiB }, "/home/dave": { magic: NFS, availableBytes: GiB } }, ["/tmp", SLURM_TASK, `${SLURM_TASK}/cgroup.procs`]));
    expect(r.checks.find((x) => x.id === "job-cgroup")).toEqual({ id: "job-cgroup", level: "ok", message: `this job's cgroup is delegated to dave: ${SLURM_TASK} (controllers: cpuset cpu memory pids)` });
    expect(r.ok).toBe(true);
  });

  test("a directory chowned without its cgroup.procs is not delegated (a process cannot be moved in)", async () => {
    const r = await doctorOn("invalid-job-slurm-cgroup-v2", probe({ "/tmp": { magic: EXT4, availableBytes: 100 * GiB }, "/home/dave": { magic: NFS, availableBytes: GiB } }, ["/tmp", SLURM_TASK]));
    expect(r.checks.find((x) => x.id === "job-cgroup")!.level).toBe("fail");
  });

  test("--scratch is where the scratch checks look", async () => {
    const r = await doctorOn("valid-job-host-e", probe({ "/local/scratch": { magic: 0x58465342, availableBytes: 900 * GiB }, "/home/u7sjob": { magic: EXT4, availableBytes: GiB } }, [...HOST_E_WRITABLE, "/local/scratch"]), {}, "/local/scratch");
    expect(r.scratch).toBe("/local/scratch");
    expect(r.checks.find((x) => x.id === "job-scratch")!.message).toBe("scratch directory /local/scratch is on xfs (node-local)");
  });

  test("$TMPDIR is the default scratch (a scheduler's per-job node-local directory)", async () => {
    const r = await doctorOn("valid-job-host-e", probe({ "/local/job42": { magic: EXT4, availableBytes: 20 * GiB }, "/home/u7sjob": { magic: EXT4, availableBytes: GiB } }, [...HOST_E_WRITABLE, "/local/job42"]), { TMPDIR: "/local/job42" });
    expect(r.scratch).toBe("/local/job42");
    expect(r.ok).toBe(true);
  });

  test("no engine u7s can start: a fail with the install command", async () => {
    const { host, info } = recordedHost("valid-job-host-e");
    host.opts.binaries = { newuidmap: "/usr/bin/newuidmap", newgidmap: "/usr/bin/newgidmap" };
    const env = { HOME: info.home, USER: "u7sjob" };
    const config = await resolveNodeConfig({ flags: {}, env, host });
    const r = await runJobDoctor({ config, host, probe: probe({ "/tmp": { magic: TMPFS, availableBytes: 11 * GiB }, "/home/u7sjob": { magic: EXT4, availableBytes: GiB } }, HOST_E_WRITABLE), env });
    expect(r.checks.find((x) => x.id === "job-engine")).toMatchObject({ level: "fail", fix: expect.stringContaining("apt-get install -y --no-install-recommends podman") });
  });

  test("Docker without RootlessKit cannot start privately: named", async () => {
    const { host, info } = recordedHost("valid-job-host-e");
    const { rootlesskit: _, ...rest } = host.opts.binaries;
    host.opts.binaries = rest;
    const env = { HOME: info.home, USER: "u7sjob", CONTAINER_ENGINE: "docker" };
    const config = await resolveNodeConfig({ flags: {}, env, host });
    const r = await runJobDoctor({ config, host, probe: probe({ "/tmp": { magic: TMPFS, availableBytes: 11 * GiB }, "/home/u7sjob": { magic: EXT4, availableBytes: GiB } }, HOST_E_WRITABLE), env });
    expect(r.checks.find((x) => x.id === "job-engine")!.message).toBe("a private rootless Docker cannot start: rootlesskit not found");
  });
});

describe("checkScratch", () => {
  test.each([
    [NFS, "nfs"],
    [LUSTRE, "lustre"],
    [GPFS, "gpfs"],
  ])("scratch on a shared file system (magic %d, %s) fails", (magic, name) => {
    const [c] = checkScratch(probe({ "/scratch": { magic, availableBytes: 100 * GiB } }, ["/scratch"]), "/scratch");
    expect(c).toMatchObject({ id: "job-scratch", level: "fail", message: expect.stringContaining(`scratch directory /scratch is on ${name}, shared between hosts`) });
    expect(c!.fix).toContain("--scratch");
  });
  test.each([
    [1 * GiB, "fail"],
    [3 * GiB, "warn"],
    [6 * GiB, "ok"],
  ])("%d bytes free: %s", (free, level) => {
    const checks = checkScratch(probe({ "/tmp": { magic: TMPFS, availableBytes: free } }, ["/tmp"]), "/tmp");
    expect(checks.find((c) => c.id === "job-scratch-space")!.level).toBe(level as "ok");
  });
  test("a local scratch directory this user cannot write fails", () => {
    expect(checkScratch(probe({ "/tmp": { magic: EXT4, availableBytes: 9 * GiB } }, []), "/tmp")[0]).toMatchObject({ level: "fail", message: "scratch directory /tmp (ext4) is not writable for this user" });
  });
  test("a missing scratch directory fails with statfs's reason", () => {
    expect(checkScratch(probe({}, []), "/nope")).toEqual([
      { id: "job-scratch", level: "fail", message: "scratch directory /nope: statfs /nope: no such file or directory (ENOENT)", fix: "mkdir -p /nope, or pass --scratch DIR on node-local disk" },
    ]);
  });
});

describe("u7s doctor flags", () => {
  test("--scratch without --job is bad input", async () => {
    const r = await runCli(["doctor", "--scratch", "/tmp"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("error: --scratch goes with --job");
  });
});
