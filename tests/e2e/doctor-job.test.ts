// `u7s doctor --job` on test host E (tests/setup-job-hosts.sh), as a job step there sees it: no
// XDG_RUNTIME_DIR, no engine, its own /tmp, its cgroup delegated; and, as the same user outside that
// cgroup (the machine's root cgroup, as a scheduler's job cgroup that was not delegated), a failing check.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { copyFileSync, chmodSync, existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { hostsEnvFile, loadHostsEnv, repoRoot, runCommand, show } from "./harness.ts";
import { describeIf } from "./describe-if.ts";
import type { Check } from "../../lib/host/doctor.ts";

const raw: Record<string, string | undefined> = existsSync(hostsEnvFile) ? loadHostsEnv().raw : {};
const W = raw.U7S_HOST_E_EXEC;
const USER = raw.U7S_JOB_USER;
const HOME = raw.U7S_JOB_HOME;
const CGROUPS = (raw.U7S_HOST_E_CGROUP ?? "").split(" ").filter(Boolean);
const BIN = raw.U7S_JOB_BIN_DIR ? join(raw.U7S_JOB_BIN_DIR, `u7s-doctor-${process.pid}`) : "";

interface Report {
  ok: boolean;
  host: string;
  scratch: string;
  checks: Check[];
}

describeIf(W && BIN && USER, "host E is not set up (tests/.work/hosts.env has no U7S_HOST_E_EXEC, U7S_JOB_BIN_DIR or U7S_JOB_USER): run `bash tests/setup-job-hosts.sh` (as root)")("doctor --job on test host E", () => {
  beforeAll(() => {
    const src = join(repoRoot, "dist/u7s");
    if (!existsSync(src)) throw new Error(`${src} is missing: run ./compile.sh first`);
    copyFileSync(src, BIN);
    chmodSync(BIN, 0o755);
  });
  afterAll(() => rmSync(BIN, { force: true }));

  test("in the job: every check ok, for host-e, its /tmp a node-local tmpfs, its cgroup the delegated one", async () => {
    const r = await runCommand([W!, BIN, "doctor", "--job", "--json"]);
    expect(r.exitCode, show(r)).toBe(0);
    const report = JSON.parse(r.stdout) as Report;
    expect(report.checks.filter((c) => c.level !== "ok")).toEqual([]);
    expect(report.host).toBe("host-e");
    expect(report.scratch).toBe("/tmp");
    const msg = (id: string) => report.checks.find((c) => c.id === id)?.message;
    expect(msg("job-cgroup")).toBe(`this job's cgroup is delegated to ${USER}: ${CGROUPS.join(", ")}`);
    expect(msg("job-scratch")).toBe("scratch directory /tmp is on tmpfs (node-local)");
    expect(msg("job-runtime-dir")).toStartWith("no XDG_RUNTIME_DIR");
    expect(msg("job-home")).toStartWith(`home ${HOME} is on `);
    expect(msg("job-engine")).toStartWith("a private rootless Docker can start without systemd");
    // the text form names the host first and counts
    const text = await runCommand([W!, BIN, "doctor", "--job"]);
    expect(text.stdout.split("\n")[0]).toBe(" ✓ host host-e: checks for a batch job's cluster (u7s up --job)");
    expect(text.stdout).toContain("doctor: 0 failed, 0 warning(s), 10 ok");
  });

  test("outside a delegated cgroup: the job cgroup check fails and doctor exits 1; a scratch directory that is not there fails too", async () => {
    // the same user and environment, in the machine's own cgroups (root's): what a job gets when its cgroup is not delegated
    const argv = ["setpriv", `--reuid=${USER}`, `--regid=${USER}`, "--init-groups", "--", "env", "-i", `HOME=${HOME}`, `USER=${USER}`, "PATH=/usr/local/bin:/usr/bin:/bin", BIN, "doctor", "--job", "--json", "--scratch", "/nonexistent-scratch"];
    const r = await runCommand(argv);
    expect(r.exitCode, show(r)).toBe(1);
    const report = JSON.parse(r.stdout) as Report;
    const failed = report.checks.filter((c) => c.level === "fail").map((c) => c.id);
    expect(failed).toEqual(["job-cgroup", "job-scratch"]);
    expect(report.checks.find((c) => c.id === "job-cgroup")!.message).toContain("usernetes #372");
  });
});
