// A batch job's private engine (lib/engine/private.ts) on test host E (tests/setup-job-hosts.sh): no engine
// running, no XDG_RUNTIME_DIR, a /tmp of its own. One process starts the engine and exits (as `u7s up --job`
// is SIGKILLed), a second one finds and stops it (as `u7s down --job` from an epilog); then nothing of the
// engine is left: no process in its user namespace or process group, no mount, no scratch directory.
// Runs lib/engine/private.ts compiled into tests/e2e/fixtures/private-engine-driver.ts, as the job user.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { join } from "node:path";
import { hostsEnvFile, loadHostsEnv, repoRoot, runCommand, show, type CommandResult } from "./harness.ts";
import { describeIf } from "./describe-if.ts";

const raw: Record<string, string | undefined> = existsSync(hostsEnvFile) ? loadHostsEnv().raw : {};
const W = raw.U7S_HOST_E_EXEC;
const WF = raw.U7S_HOST_F_EXEC;
const MNT = raw.U7S_HOST_E_MOUNT_NS;
const UID = raw.U7S_JOB_UID;
const ARCHIVE = raw.U7S_JOB_IMAGE_ARCHIVE;
const IMAGE = raw.U7S_HOSTS_TEST_IMAGE;
const DRIVER = raw.U7S_JOB_BIN_DIR ? join(raw.U7S_JOB_BIN_DIR, `private-engine-driver-${process.pid}`) : "";
// host E's own /tmp; a name of its own, apart from job-flow's u7s-UID-host-e-JOBID
const SCRATCH = `/tmp/u7s-${UID}-host-e-e2e`;
const NOT_OURS = `/tmp/u7s-${UID}-host-e-e2e-not-ours`;
const HOME = raw.U7S_JOB_HOME;
// where rootless engines write in a home unless told otherwise (Podman 4.3 and Docker 20.10, measured)
const ENGINE_HOME_PATHS = [".local/share/containers", ".local/share/docker", ".config/cni", ".cache/containers", ".config/docker", ".docker"];

const onE = (argv: readonly string[], timeoutMs = 120_000) => runCommand([W!, ...argv], { timeoutMs });
const ok = (r: CommandResult) => {
  expect(r.exitCode, show(r)).toBe(0);
  return r;
};

/** procs reads every live process's user namespace, process group, uid and state (as root). */
function procs(): { pid: number; userns?: string; pgid: number; uid: number }[] {
  const out = [];
  for (const n of readdirSync("/proc")) {
    if (!/^\d+$/.test(n)) continue;
    try {
      const stat = readFileSync(`/proc/${n}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (f[0] === "Z" || f[0] === "X") continue; // dead, waiting for its parent
      const uid = Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${n}/status`, "utf8"))?.[1]);
      let userns: string | undefined;
      try {
        userns = readlinkSync(`/proc/${n}/ns/user`);
      } catch {
        userns = undefined;
      }
      out.push({ pid: Number(n), userns, pgid: Number(f[2]), uid });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

describeIf(W && MNT && DRIVER && ARCHIVE, "host E is not set up (tests/.work/hosts.env has no U7S_HOST_E_EXEC, U7S_HOST_E_MOUNT_NS, U7S_JOB_BIN_DIR or U7S_JOB_IMAGE_ARCHIVE): run `bash tests/setup-job-hosts.sh` (as root)")("private engine on test host E", () => {
  beforeAll(async () => {
    const bun = join(repoRoot, "node_modules/.bin/bun");
    const r = await runCommand([bun, "build", "--compile", join(repoRoot, "tests/e2e/fixtures/private-engine-driver.ts"), "--outfile", DRIVER], { timeoutMs: 120_000 });
    if (r.exitCode !== 0) throw new Error(`compiling the driver: ${show(r)}`);
  }, 130_000);
  afterAll(async () => {
    await onE([DRIVER, "stop", SCRATCH]);
    await onE(["rm", "-rf", "--", NOT_OURS]);
    rmSync(DRIVER, { force: true });
  });

  for (const engine of ["docker", "podman"] as const) {
    test(`${engine}: starts in scratch without systemd, runs containers of sub-IDs, and another process stops it leaving nothing`, async () => {
      await onE([DRIVER, "stop", SCRATCH]); // an earlier run's, if any
      const inHome = async () => (await Promise.all(ENGINE_HOME_PATHS.map(async (p) => ((await onE(["test", "-e", `${HOME}/${p}`])).exitCode === 0 ? p : undefined)))).filter(Boolean);
      const homeBefore = await inHome();
      const started = ok(await onE([DRIVER, "start", engine, SCRATCH]));
      const { env } = JSON.parse(started.stdout) as { pid: number; env: Record<string, string> };
      expect(env.CONTAINER_ENGINE).toBe(engine);
      expect(env.XDG_RUNTIME_DIR).toBe(`${SCRATCH}/run`);
      const state = JSON.parse(ok(await onE(["cat", `${SCRATCH}/engine.json`])).stdout) as { pid: number; userns: string };
      // the scratch directory is host E's own: not on host F, not in the machine's /tmp
      ok(await onE(["test", "-d", SCRATCH]));
      expect((await runCommand([WF!, "test", "-e", SCRATCH])).exitCode).not.toBe(0);
      expect(existsSync(SCRATCH)).toBe(false);
      expect(ok(await onE(["stat", "-c", "%a", `${SCRATCH}/run`])).stdout.trim()).toBe("700");

      // the engine's storage is in scratch, and it runs containers: one of a sub-ID, one node-like (systemd)
      const cli = (...args: string[]) => onE(["env", ...Object.entries(env).map(([k, v]) => `${k}=${v}`), engine, ...args], 300_000);
      ok(await cli("load", "-q", "-i", ARCHIVE!));
      const root = ok(await cli("info", "--format", engine === "docker" ? "{{.DockerRootDir}}" : "{{.Store.GraphRoot}}")).stdout.trim();
      expect(root).toBe(engine === "docker" ? `${SCRATCH}/docker` : `${SCRATCH}/containers/storage`);
      ok(await cli("run", "-d", "--user", "1000", IMAGE!, "sleep", "600"));
      ok(await cli("run", "-d", "--privileged", IMAGE!));
      ok(await cli("volume", "create", "e2e-vol"));
      expect(ok(await cli("volume", "inspect", "--format", "{{.Mountpoint}}", "e2e-vol")).stdout.trim()).toStartWith(`${SCRATCH}/`);
      const inside = procs().filter((p) => p.userns === state.userns);
      expect(inside.some((p) => p.uid !== Number(UID))).toBe(true); // a sub-ID's process: stop must reach it too

      // a second process stops it, as `u7s down --job` after a SIGKILL; Slurm's KillWait is 30 s by default
      const t0 = Date.now();
      ok(await onE([DRIVER, "stop", SCRATCH]));
      expect(Date.now() - t0).toBeLessThan(25_000);

      expect(procs().filter((p) => p.userns === state.userns || p.pgid === state.pid || p.pid === state.pid)).toEqual([]);
      expect((await onE(["test", "-e", SCRATCH])).exitCode).not.toBe(0);
      const mounts = ok(await runCommand(["nsenter", `--mount=${MNT}`, "cat", "/proc/self/mountinfo"])).stdout;
      expect(mounts.split("\n").filter((l) => l.includes(SCRATCH))).toEqual([]);
      // nothing of the engine's in the shared home: no storage, no caches, locks or keys (checked where engines write)
      expect(await inHome()).toEqual(homeBefore);
      // stopped is stopped: a second stop finds nothing
      expect((await onE([DRIVER, "stop", SCRATCH])).exitCode).toBe(3);
    }, 600_000);
  }

  test("two jobs of the same user on host E: stopping one leaves the other's engine and containers (same sub-IDs) running", async () => {
    const other = `${SCRATCH}-second`;
    await onE([DRIVER, "stop", SCRATCH]);
    await onE([DRIVER, "stop", other]);
    const envOf = (r: CommandResult) => Object.entries((JSON.parse(r.stdout) as { env: Record<string, string> }).env).map(([k, v]) => `${k}=${v}`);
    const first = envOf(ok(await onE([DRIVER, "start", "docker", SCRATCH])));
    const second = envOf(ok(await onE([DRIVER, "start", "docker", other])));
    try {
      for (const env of [first, second]) {
        ok(await onE(["env", ...env, "docker", "load", "-q", "-i", ARCHIVE!], 300_000));
        ok(await onE(["env", ...env, "docker", "run", "-d", "--name", "e2e-sub", "--user", "1000", IMAGE!, "sleep", "600"]));
      }
      ok(await onE([DRIVER, "stop", SCRATCH]));
      const running = ok(await onE(["env", ...second, "docker", "inspect", "--format", "{{.State.Running}} {{.State.Pid}}", "e2e-sub"])).stdout.trim().split(" ");
      expect(running[0]).toBe("true");
      expect(existsSync(`/proc/${running[1]}`)).toBe(true); // its process of a sub-ID lives on
      ok(await onE(["test", "-d", other]));
    } finally {
      await onE([DRIVER, "stop", SCRATCH]);
      ok(await onE([DRIVER, "stop", other]));
    }
    expect((await onE(["test", "-e", other])).exitCode).not.toBe(0);
  }, 600_000);

  test("a scratch directory u7s did not make is neither used nor removed", async () => {
    await onE(["rm", "-rf", "--", NOT_OURS]);
    ok(await onE(["mkdir", "-p", NOT_OURS]));
    ok(await onE(["touch", `${NOT_OURS}/the-users-file`]));
    const r = await onE([DRIVER, "start", "docker", NOT_OURS]);
    expect(r.exitCode, show(r)).toBe(1);
    expect(r.stderr).toContain(`error: scratch directory ${NOT_OURS} exists and was not made by u7s`);
    expect((await onE([DRIVER, "stop", NOT_OURS])).exitCode).toBe(3);
    ok(await onE(["test", "-f", `${NOT_OURS}/the-users-file`]));
    ok(await onE(["rm", "-rf", "--", NOT_OURS]));
  }, 120_000);
});
