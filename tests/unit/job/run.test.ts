// The order of `u7s up --job` on the control plane's host and on a worker, with fake actions (no
// engine), a fake clock and a real temporary "shared home": the waits, markers and teardown.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jobPaths, type JobPaths } from "../../../lib/job/files.ts";
import { BRINGUP_SETTLE_MS, EXIT_STOPPED, jobUp, teardown, TEARDOWN_BUDGET_MS, type JobActions, type JobPlan } from "../../../lib/job/run.ts";
import type { Clock } from "../../../lib/job/wait.ts";
import { U7sError } from "../../../lib/errors.ts";
import { Log } from "../../../lib/log.ts";

let home: string;
beforeEach(() => {
  home = mkdtempSync(join(tmpdir(), "u7s-job-run-"));
});
afterEach(() => rmSync(home, { recursive: true, force: true }));

/** fakeClock advances only when something sleeps; tick runs at each new time (a host acting meanwhile). */
function fakeClock(tick: (t: number) => void | Promise<void> = () => undefined): Clock & { t: number } {
  const c = {
    t: 0,
    now: () => c.t,
    sleep: async (ms: number) => {
      c.t += ms;
      await tick(c.t);
      await new Promise((r) => setImmediate(r));
    },
  };
  return c;
}

/** recorder is a fake JobActions that records each call; fail names one to fail, hang one to never end. */
function recorder(opts: { fail?: keyof JobActions; failWith?: string; hang?: keyof JobActions; clock?: Clock } = {}) {
  const calls: string[] = [];
  /** at: the clock's time of each action's first call. */
  const at: Partial<Record<keyof JobActions, number>> = {};
  const act = {} as JobActions;
  for (const name of ["startEngine", "upNode", "initControlPlane", "writeJoinFile", "writeKubeconfig", "join", "downNode", "stopEngine"] as const) {
    act[name] = async (arg?: string) => {
      calls.push(arg === undefined ? name : `${name} ${arg}`);
      at[name] ??= opts.clock?.now();
      if (opts.hang === name) return new Promise<void>(() => undefined);
      if (opts.fail === name) throw new U7sError(opts.failWith ?? `${name} failed`);
      if (name === "writeJoinFile" || name === "writeKubeconfig") writeFileSync(arg!, "x", { mode: 0o600 });
    };
  }
  return { act, calls, at };
}

function io(clock: Clock) {
  const err: string[] = [];
  const out: string[] = [];
  const log = new Log({ isTTY: false, write: (t) => void err.push(t) }, { color: false });
  return { io: { out: { isTTY: false, write: (t: string) => void out.push(t) }, log, clock }, out, err };
}

/** stopper is a StopSignals whose signal the test sends. */
function stopper() {
  let send!: (name: string) => void;
  const stopped = new Promise<string>((r) => (send = r));
  return { signals: { stopped }, send };
}

function plan(role: JobPlan["role"], paths: JobPaths, timeoutSeconds = 600): JobPlan {
  return { jobId: "4242", host: role === "control-plane" ? "host-e" : "host-f", controlPlane: "host-e", role, paths, timeoutSeconds };
}

/** until polls (real time, briefly) for a condition the code under test reaches by itself. */
async function until(what: string, ok: () => boolean): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    if (ok()) return;
    await Bun.sleep(5);
  }
  throw new Error(`never: ${what}`);
}

const listTree = (dir: string): string[] => (existsSync(dir) ? readdirSync(dir, { recursive: true }).map(String).sort() : []);

describe("control plane host", () => {
  test("brings up, writes kubeconfig then join file, prints the export line, tears down on the signal and leaves the home as it was", async () => {
    const before = listTree(home);
    const paths = jobPaths(join(home, ".local/state"), "4242");
    const { act, calls } = recorder();
    const clock = fakeClock();
    const { io: jobIo, out } = io(clock);
    const { signals, send } = stopper();
    const done = jobUp(plan("control-plane", paths), act, jobIo, signals);
    await until("the export line", () => out.length > 0);
    expect(out.join("")).toBe(`export KUBECONFIG=${paths.kubeconfig}\n`);
    expect(calls).toEqual(["startEngine", "upNode", "initControlPlane", `writeKubeconfig ${paths.kubeconfig}`, `writeJoinFile ${paths.joinFile}`]);
    expect(readdirSync(paths.readyDir)).toEqual(["host-e"]);
    expect((await import("node:fs")).statSync(paths.dir).mode & 0o777).toBe(0o700);
    send("SIGTERM");
    expect(await done).toBe(0);
    expect(calls.slice(5)).toEqual(["downNode", "stopEngine"]);
    // the job directory and the directories made for it (.local, .local/state, u7s, jobs) are gone
    expect(listTree(home)).toEqual(before);
  });

  test("a directory that was there before (another job's) stays; only the job's own goes", async () => {
    const paths = jobPaths(join(home, "state"), "4242");
    const other = jobPaths(join(home, "state"), "77");
    const { act } = recorder();
    const clock = fakeClock();
    const { io: jobIo, out } = io(clock);
    const { signals, send } = stopper();
    const done = jobUp(plan("control-plane", paths), act, jobIo, signals);
    await until("Ready", () => out.length > 0);
    writeFileSync(join(home, "state", "u7s", "jobs", "keep-me"), "mine");
    send("SIGHUP");
    expect(await done).toBe(0);
    expect(existsSync(paths.dir)).toBe(false);
    expect(readFileSync(join(home, "state", "u7s", "jobs", "keep-me"), "utf8")).toBe("mine");
    expect(existsSync(other.dir)).toBe(false);
  });

  test("a failed bring-up writes failed.json with the reason, tears down, keeps the marker for the workers, and fails", async () => {
    const paths = jobPaths(join(home, "state"), "4242");
    const { act, calls } = recorder({ fail: "initControlPlane", failWith: "cannot initialise the control plane with kubeadm: boom\nmore" });
    const { io: jobIo, out } = io(fakeClock());
    const r = jobUp(plan("control-plane", paths), act, jobIo, stopper().signals);
    await expect(r).rejects.toThrow("boom");
    const marker = JSON.parse(readFileSync(paths.failed, "utf8")) as { host: string; reason: string };
    expect(marker).toMatchObject({ host: "host-e", reason: "cannot initialise the control plane with kubeadm: boom" });
    expect(calls).toEqual(["startEngine", "upNode", "initControlPlane", "downNode", "stopEngine"]);
    expect(existsSync(paths.joinFile)).toBe(false);
    expect(out).toEqual([]);
  });

  test("a job directory removed while the control plane came up: it fails saying so, and the workers learn it from failed.json", async () => {
    const paths = jobPaths(join(home, "state"), "4242");
    const { act, calls } = recorder();
    const initControlPlane = act.initControlPlane;
    act.initControlPlane = async () => {
      await initControlPlane();
      rmSync(join(home, "state"), { recursive: true, force: true });
    };
    const { io: jobIo } = io(fakeClock());
    await expect(jobUp(plan("control-plane", paths), act, jobIo, stopper().signals)).rejects.toThrow(`the job's directory ${paths.dir} was removed while the control plane came up`);
    expect(calls).toEqual(["startEngine", "upNode", "initControlPlane", "downNode", "stopEngine"]);
    expect(existsSync(paths.joinFile)).toBe(false);
    expect(JSON.parse(readFileSync(paths.failed, "utf8")).reason).toContain("was removed while the control plane came up");
  });

  test("an old run's join file of the same job id is removed before anything else", async () => {
    const paths = jobPaths(join(home, "state"), "4242");
    const { act } = recorder({ fail: "startEngine" });
    const { mkdirSync } = await import("node:fs");
    mkdirSync(paths.dir, { recursive: true });
    writeFileSync(paths.joinFile, "stale");
    const { io: jobIo } = io(fakeClock());
    await expect(jobUp(plan("control-plane", paths), act, jobIo, stopper().signals)).rejects.toThrow("startEngine failed");
    expect(existsSync(paths.joinFile)).toBe(false);
  });
});

describe("worker host", () => {
  test("started 20 s before the control plane: brings up its node, waits, joins with the file, then tears down only its own part", async () => {
    const paths = jobPaths(join(home, "state"), "4242");
    const { act, calls } = recorder();
    // the control plane writes its join file at t = 20 s (after the worker's node is up)
    const clock = fakeClock(async (t) => {
      if (t === 20_000) {
        const { mkdirSync } = await import("node:fs");
        mkdirSync(paths.readyDir, { recursive: true });
        writeFileSync(paths.joinFile, "{}");
      }
    });
    const { io: jobIo, out, err } = io(clock);
    const { signals, send } = stopper();
    const done = jobUp(plan("worker", paths, 600), act, jobIo, signals);
    await until("the export line", () => out.length > 0);
    expect(clock.t).toBe(20_000);
    expect(calls).toEqual(["startEngine", "upNode", `join ${paths.joinFile}`]);
    expect(err.join("")).toContain("waiting for the control plane host-e");
    expect(readdirSync(paths.readyDir)).toEqual(["host-f"]);
    send("SIGTERM");
    expect(await done).toBe(0);
    expect(calls.slice(3)).toEqual(["downNode", "stopEngine"]);
    // the worker removes its ready mark, never the control plane's files
    expect(readdirSync(paths.dir).sort()).toEqual(["join.json", "ready"]);
    expect(readdirSync(paths.readyDir)).toEqual([]);
  });

  test("a failed control plane makes the worker fail with its reason, and tear down", async () => {
    const paths = jobPaths(join(home, "state"), "4242");
    const clock = fakeClock(async (t) => {
      if (t === 5_000) {
        const { mkdirSync } = await import("node:fs");
        mkdirSync(paths.dir, { recursive: true });
        writeFileSync(paths.failed, JSON.stringify({ host: "host-e", reason: "the node image is missing", time: "" }));
      }
    });
    const { act, calls, at } = recorder({ clock });
    const { io: jobIo } = io(clock);
    await expect(jobUp(plan("worker", paths), act, jobIo, stopper().signals)).rejects.toThrow("the control plane host-e failed: the node image is missing");
    expect(at.downNode).toBe(5_000);
    expect(calls).toEqual(["startEngine", "upNode", "downNode", "stopEngine"]);
    expect(existsSync(paths.failed)).toBe(true); // the marker is the control plane's
  });

  test("no join file within --timeout: the worker fails saying what it waited for, and tears down", async () => {
    const paths = jobPaths(join(home, "state"), "4242");
    const clock = fakeClock();
    const { act, calls, at } = recorder({ clock });
    const { io: jobIo } = io(clock);
    await expect(jobUp(plan("worker", paths, 30), act, jobIo, stopper().signals)).rejects.toThrow(`no join file from the control plane host-e after 30s (waited for ${paths.joinFile})`);
    expect(at.downNode).toBe(30_000);
    expect(calls).toEqual(["startEngine", "upNode", "downNode", "stopEngine"]);
  });

  test("a signal while waiting stops at once: no join, teardown, exit 143", async () => {
    const paths = jobPaths(join(home, "state"), "4242");
    const { signals, send } = stopper();
    const clock = fakeClock((t) => {
      if (t === 3_000) send("SIGTERM");
    });
    const { act, calls, at } = recorder({ clock });
    const { io: jobIo } = io(clock);
    expect(await jobUp(plan("worker", paths), act, jobIo, signals)).toBe(EXIT_STOPPED);
    expect(calls).toEqual(["startEngine", "upNode", "downNode", "stopEngine"]);
    // at once: not after the 600 s --timeout (the fake clock also runs the teardown's pause for the stopped bring-up, 5 s)
    expect(at.downNode).toBeLessThan(3_000 + BRINGUP_SETTLE_MS + 1_000);
  });

  test("a signal during a step that does not end: teardown still runs (the step's commands are cut off by the gated runner)", async () => {
    const paths = jobPaths(join(home, "state"), "4242");
    const { act, calls } = recorder({ hang: "upNode" });
    const { signals, send } = stopper();
    const { io: jobIo } = io(fakeClock());
    const done = jobUp(plan("worker", paths), act, jobIo, signals);
    await until("upNode started", () => calls.includes("upNode"));
    send("SIGINT");
    expect(await done).toBe(EXIT_STOPPED);
    expect(calls).toEqual(["startEngine", "upNode", "downNode", "stopEngine"]);
  });
});

describe("teardown", () => {
  test("a node removal that hangs does not hold up the engine's stop past the budget", async () => {
    const paths = jobPaths(join(home, "state"), "4242");
    const { act, calls } = recorder({ hang: "downNode" });
    const clock = fakeClock();
    const { io: jobIo, err } = io(clock);
    expect(await teardown({ role: "worker", paths, host: "host-f" }, act, jobIo)).toBe(true);
    expect(calls).toEqual(["downNode", "stopEngine"]);
    expect(clock.t).toBe(TEARDOWN_BUDGET_MS);
    expect(err.join("")).toContain("stopping the engine anyway");
  });

  test("what could not be removed is said, and the result says so; the rest still runs", async () => {
    const paths = jobPaths(join(home, "state"), "4242");
    const { act, calls } = recorder({ fail: "downNode" });
    const { io: jobIo, err } = io(fakeClock());
    expect(await teardown({ role: "control-plane", paths, host: "host-e" }, act, jobIo)).toBe(false);
    expect(calls).toEqual(["downNode", "stopEngine"]);
    expect(err.join("")).toContain("could not remove the node: downNode failed");
  });
});
