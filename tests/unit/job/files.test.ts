import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { gated, jobEnv, loadedRef, withEnv } from "../../../lib/job/actions.ts";
import { isThisHost, jobIdFrom, jobNodeSubnet, jobPaths, jobTenant, MADE_RECORD, makeDirs, makeJobDir, markReady, removeJobDir, normalizeJobId, readJobState, sameHost, scratchBase, scratchDir, writeJobState, type JobState } from "../../../lib/job/files.ts";
import { jobRole } from "../../../lib/job/run.ts";
import { UsageError } from "../../../lib/errors.ts";
import type { Runner, RunOptions } from "../../../lib/exec.ts";
import { Log } from "../../../lib/log.ts";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "u7s-job-files-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("job id", () => {
  test.each([
    [undefined, { SLURM_JOB_ID: "12345", FLUX_JOB_ID: "f9" }, "12345"],
    [undefined, { FLUX_JOB_ID: "ƒ2Nk9eR4" }, "f2Nk9eR4"],
    [undefined, { U7S_JOB_ID: "mine", SLURM_JOB_ID: "12345" }, "mine"],
    ["7", { SLURM_JOB_ID: "12345" }, "7"],
    [undefined, { SLURM_JOB_ID: "12345+1" }, "12345_1"],
    [undefined, { SLURM_JOB_ID: "", FLUX_JOB_ID: "f9" }, "f9"],
  ] as const)("flag %p, env %p: %p", (flag, env, want) => {
    expect(jobIdFrom(flag, env)).toBe(want);
  });

  test("none, or one that cannot name a directory, is a usage error naming the source", () => {
    expect(() => jobIdFrom(undefined, {})).toThrow(UsageError);
    expect(() => jobIdFrom(undefined, {})).toThrow("SLURM_JOB_ID");
    expect(() => jobIdFrom("../x", {})).toThrow('--job-id="../x"');
    expect(() => jobIdFrom(undefined, { SLURM_JOB_ID: "a/b" })).toThrow('SLURM_JOB_ID="a/b"');
    for (const bad of ["..", ".", "a b", "x".repeat(65)]) expect(normalizeJobId(bad)).toBeUndefined();
  });

  test("the job's tenant: the same for one id, 1..99, numeric ids modulo 99", () => {
    expect(jobTenant("12345")).toBe((12345 % 99) + 1);
    expect(jobTenant("98")).toBe(99);
    expect(jobTenant("99")).toBe(1);
    expect(jobTenant("123456789012345678901234567890")).toBe(Number(123456789012345678901234567890n % 99n) + 1);
    const t = jobTenant("f2Nk9eR4");
    expect(t).toBe(jobTenant("f2Nk9eR4"));
    expect(t >= 1 && t <= 99).toBe(true);
    expect(jobTenant("f2Nk9eR4")).not.toBe(jobTenant("f2Nk9eR5"));
  });
});

describe("hosts and places", () => {
  test("the control plane is this host by its full or its short name", () => {
    expect(jobRole("host-e", "host-e", sameHost)).toBe("control-plane");
    expect(jobRole("host-e.cluster.example", "host-e", sameHost)).toBe("control-plane");
    expect(jobRole("host-f", "host-e", sameHost)).toBe("worker");
    expect(() => jobRole("host-f", undefined, sameHost)).toThrow("--control-plane");
    // Slurm's NodeName may differ from the machine's host name: SLURMD_NODENAME is that name in a job step
    expect(isThisHost("cn001", "node-17.example", { SLURMD_NODENAME: "cn001" })).toBe(true);
    expect(isThisHost("cn002", "node-17.example", { SLURMD_NODENAME: "cn001" })).toBe(false);
    expect(jobNodeSubnet({ SLURM_JOB_NODELIST: "cn[001-002]", SLURMD_NODENAME: "cn002" }, "node-18", 1)).toBe("10.101.1.0/24");
  });

  test("scratch: per user, host and job, under --scratch, else TMPDIR, else /tmp", () => {
    expect(scratchDir(scratchBase(undefined, {}), 1001, "host-e.example", "42")).toBe("/tmp/u7s-1001-host-e-42");
    expect(scratchDir(scratchBase(undefined, { TMPDIR: "/local/" }), 1001, "n1", "42")).toBe("/local/u7s-1001-n1-42");
    expect(scratchDir(scratchBase("/scratch", { TMPDIR: "/local" }), 1001, "n1", "42")).toBe("/scratch/u7s-1001-n1-42");
    expect(() => scratchBase("rel", {})).toThrow("--scratch");
    expect(scratchBase(undefined, { TMPDIR: "relative" })).toBe("/tmp");
  });

  test("the job's environment keeps u7s's state in scratch and picks the job's tenant unless one is set", () => {
    const env = jobEnv({ HOME: "/home/u", U7S_TENANT: "" }, "/tmp/s", "12345", "n1", { DOCKER_HOST: "unix:///tmp/s/run/docker.sock" });
    expect(env).toMatchObject({
      HOME: "/home/u",
      XDG_CONFIG_HOME: "/tmp/s/config",
      XDG_STATE_HOME: "/tmp/s/state",
      XDG_DATA_HOME: "/tmp/s/data",
      KUBECONFIG: "/tmp/s/kube/config",
      U7S_TENANT: String(jobTenant("12345")),
      DOCKER_HOST: "unix:///tmp/s/run/docker.sock",
    });
    expect(jobEnv({ U7S_TENANT: "5" }, "/tmp/s", "12345", "n1").U7S_TENANT).toBe("5");
    expect(env.NODE_SUBNET).toBeUndefined(); // no node list: the host name's hash
  });

  test("NODE_SUBNET from the host's place in the job's node list: never the same for two hosts of a job", () => {
    const list = { SLURM_JOB_NODELIST: "cn[001-300]" };
    const subnets = Array.from({ length: 256 }, (_, i) => jobEnv(list, "/s", "7", `cn${String(i + 1).padStart(3, "0")}.example`).NODE_SUBNET);
    expect(subnets[0]).toBe(`10.${100 + jobTenant("7")}.0.0/24`);
    expect(subnets[255]).toBe(`10.${100 + jobTenant("7")}.255.0/24`);
    expect(new Set(subnets).size).toBe(256);
    expect(jobEnv(list, "/s", "7", "cn257").NODE_SUBNET).toBeUndefined(); // past 256: the hash
    expect(jobEnv(list, "/s", "7", "login1").NODE_SUBNET).toBeUndefined(); // not in the list
    expect(jobEnv({ ...list, NODE_SUBNET: "10.9.9.0/24" }, "/s", "7", "cn001").NODE_SUBNET).toBe("10.9.9.0/24");
    expect(jobEnv({ ...list, U7S_TENANT: "0" }, "/s", "7", "cn002").NODE_SUBNET).toBe("10.100.1.0/24");
    expect(jobNodeSubnet({ FLUX_JOB_NODELIST: "a,b" }, "b", 3)).toBe("10.103.1.0/24");
  });

  test("the job's state round-trips; none, or a foreign file, reads as none", async () => {
    expect(await readJobState(dir)).toBeUndefined();
    const s: JobState = { kind: "u7s-job", version: 1, jobId: "1", host: "h", role: "worker", pid: 1, tenant: 2, nodeName: "u7s-h-t2", engine: "docker", privateEngine: true, jobDir: "/j", started: "" };
    await writeJobState(dir, s);
    expect(await readJobState(dir)).toEqual(s);
    await Bun.write(join(dir, "job.json"), '{"kind":"other"}');
    expect(await readJobState(dir)).toBeUndefined();
  });

  test("a Ready mark never brings back a job directory the control plane removed", async () => {
    const paths = jobPaths(dir, "1");
    await markReady(paths, "host-f.example");
    expect(existsSync(paths.dir)).toBe(false);
    mkdirSync(paths.readyDir, { recursive: true });
    await markReady(paths, "host-f.example");
    expect(readdirSync(paths.readyDir)).toEqual(["host-f"]);
  });
});

describe("runners and output", () => {
  test("withEnv adds the engine's environment; gated refuses new commands once stopped and passes the stop on", async () => {
    const seen: RunOptions[] = [];
    const runner: Runner = async (_argv, opts = {}) => {
      seen.push(opts);
      return { exitCode: 0, stdout: "", stderr: "" };
    };
    const stop = new AbortController();
    const r = gated(withEnv(runner, { DOCKER_HOST: "unix:///s" }), stop.signal);
    await r(["docker", "ps"], { env: { A: "1" } });
    expect(seen[0]!.env).toEqual({ DOCKER_HOST: "unix:///s", A: "1" });
    expect(seen[0]!.signal).toBeDefined();
    stop.abort("SIGTERM");
    expect(seen[0]!.signal!.aborted).toBe(true);
    await expect(r(["docker", "ps"])).rejects.toThrow("stopped (SIGTERM)");
    expect(seen.length).toBe(1);
  });

  test.each([
    ["Loaded image: localhost/u7s-test-cluster-node:bookworm\n", "localhost/u7s-test-cluster-node:bookworm"],
    ["Getting image source signatures\nLoaded image(s): localhost/a:b,localhost/c:d\n", "localhost/a:b"],
    ["Loaded image ID: sha256:abc\n", undefined],
  ])("loadedRef(%p)", (text, want) => {
    expect(loadedRef(text)).toBe(want);
  });

  test("a prefixed log starts every line with the host, also lines written in pieces", () => {
    const out: string[] = [];
    const log = new Log({ isTTY: false, write: (t) => void out.push(t) }, { color: false }).prefixed("[host-e] ");
    log.info("one");
    log.error("two", "d1\nd2", "fix it");
    expect(out.join("")).toBe("[host-e] one\n[host-e] error: two\n[host-e]   d1\n[host-e]   d2\n[host-e] hint: fix it\n");
  });
});

describe("the job directory in the shared home", () => {
  /** tree lists what is below the home, sorted. */
  const tree = () => readdirSync(dir, { recursive: true }).map(String).sort();
  const state = () => join(dir, ".local", "state");

  test("one job: its directory and the ones above it that it made (0700) go with it", async () => {
    const paths = jobPaths(state(), "7");
    await makeJobDir(paths, "7", "cp");
    expect(statSync(join(dir, ".local")).mode & 0o777).toBe(0o700);
    expect(readdirSync(join(state(), "u7s", "jobs")).sort()).toEqual([MADE_RECORD, "7"]);
    expect(await removeJobDir(paths)).toBe(true);
    expect(tree()).toEqual([]);
    expect(await removeJobDir(paths)).toBe(false);
  });

  test("two jobs at once: when the one that made the directories ends first, the last to leave removes them", async () => {
    const first = jobPaths(state(), "1");
    const second = jobPaths(state(), "2");
    await makeJobDir(first, "1", "cp");
    await makeJobDir(second, "2", "cp");
    await removeJobDir(first);
    expect(readdirSync(join(state(), "u7s", "jobs")).sort()).toEqual([MADE_RECORD, "2"]);
    await removeJobDir(second);
    expect(tree()).toEqual([]);
  });

  test("directories that were there stay, and so does one someone else put a file in", async () => {
    mkdirSync(join(dir, ".local"));
    const paths = jobPaths(state(), "3");
    await makeJobDir(paths, "3", "cp");
    writeFileSync(join(state(), "other-tool.log"), "");
    await removeJobDir(paths);
    expect(tree()).toEqual([".local", ".local/state", ".local/state/other-tool.log"]);
  });

  test("a jobs directory u7s did not make (no record) is left, with everything above it", async () => {
    mkdirSync(join(state(), "u7s", "jobs"), { recursive: true });
    const paths = jobPaths(state(), "4");
    await makeJobDir(paths, "4", "cp");
    expect(readdirSync(join(state(), "u7s", "jobs"))).toEqual(["4"]);
    await removeJobDir(paths);
    expect(tree()).toEqual([".local", ".local/state", ".local/state/u7s", ".local/state/u7s/jobs"]);
  });

  test("a job directory of an earlier run of the same job keeps what that run made", async () => {
    const paths = jobPaths(state(), "5");
    await makeJobDir(paths, "5", "cp");
    await makeJobDir(paths, "5", "cp");
    await removeJobDir(paths);
    expect(tree()).toEqual([]);
  });

  test("a parent another job removes meanwhile (ENOENT) starts it over; it gives up after 5 tries, naming the directory", async () => {
    const target = join(state(), "u7s", "jobs", "6");
    let removals = 1;
    const racing = async (d: string, opts: { mode: number }) => {
      // the last job of another host removes the jobs directory just after this one saw it
      if (d === target && removals-- > 0) rmdirSync(dirname(d));
      return mkdir(d, opts);
    };
    mkdirSync(join(state(), "u7s", "jobs"), { recursive: true });
    expect(await makeDirs(target, racing)).toEqual([join(state(), "u7s", "jobs"), target]);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(join(state(), "u7s", "jobs"), { recursive: true });
    await expect(makeDirs(target, async (d, opts) => { if (d === target) rmdirSync(dirname(d)); return mkdir(d, opts); })).rejects.toThrow(`cannot create ${target}`);
  });
});
