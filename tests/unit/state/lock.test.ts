// The per-node lock: exclusive creation, waiting for a live holder, recovery of a stale one's lock
// on this host (pid gone, reused by a newer process, or not u7s), never taking over another host's,
// and release only of our own file. The holder's process is looked at through a fake /proc
// (FakeProcs), so no test needs a real process in a given state; one test reads the real /proc.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Log } from "../../../lib/log.ts";
import { CLOCK_TICKS, DEFAULT_LOCK_TIMEOUT_MS, LOCK_POLL, pidAlive, realProc, staleReason, waitWords, withNodeLock, type LockHolder, type ProcProbe } from "../../../lib/state/lock.ts";
import { CaptureWriter } from "../../fixtures/fakes.ts";

let dir = "";
let path = "";
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "u7s-lock-"));
  path = join(dir, "u7s", "host-a", "u7s-node-a", "lock");
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** FakeProc is one process of the fake /proc: when it started, its arguments (undefined: cmdline unreadable), name and state. */
interface FakeProc {
  startMs: number;
  argv?: string[];
  comm: string;
  state: string;
  /** statReadable: false hides /proc/PID/stat (another user's process under hidepid). */
  statReadable: boolean;
  /** cmdline: the raw /proc/PID/cmdline when it is not argv's (a process that rewrote it, as setproctitle does). */
  cmdline?: string;
}

/** BOOT_MS is when the fake host booted: a day ago, on a whole second as /proc/stat's btime is. */
const BOOT_MS = Math.floor((Date.now() - 86_400_000) / 1000) * 1000;

/**
 * FakeProcs is a /proc as the kernel writes it (proc(5)): /proc/stat's "btime SECONDS" line, and per
 * process /proc/PID/stat (field 2 the name in parentheses, 3 the state, 22 starttime in clock ticks
 * since boot) and /proc/PID/cmdline (the arguments, each ended by a NUL; empty for kernel threads
 * and zombies). calls lists what was read.
 */
class FakeProcs implements ProcProbe {
  readonly procs = new Map<number, FakeProc>();
  readonly calls: string[] = [];
  clockTicks = CLOCK_TICKS;
  btime: string | undefined = String(BOOT_MS / 1000);
  /** onAlive runs when alive() is asked (a race: something happens between two looks). */
  onAlive: (pid: number) => void = () => {};

  add(pid: number, p: Partial<FakeProc> = {}): this {
    this.procs.set(pid, { startMs: Date.now() - 60_000, argv: ["u7s", "up"], comm: "u7s", state: "S", statReadable: true, ...p });
    return this;
  }
  alive(pid: number): boolean {
    this.onAlive(pid);
    return this.procs.has(pid);
  }
  readFile(path: string): string | undefined {
    this.calls.push(path);
    if (path === "/proc/stat") return this.btime === undefined ? "cpu  1 2 3 4\nintr 5\n" : `cpu  1 2 3 4\nintr 5\nbtime ${this.btime}\nprocesses 42\n`;
    const m = /^\/proc\/(\d+)\/(stat|cmdline)$/.exec(path);
    const p = m ? this.procs.get(Number(m[1])) : undefined;
    if (!m || !p) return undefined;
    if (m[2] === "cmdline") return p.cmdline ?? p.argv?.map((a) => `${a}\0`).join("");
    if (!p.statReadable) return undefined;
    const ticks = Math.round(((p.startMs - BOOT_MS) * this.clockTicks) / 1000);
    // fields 4..21 and 23..52 are zeros here; u7s reads 2, 3 and 22
    return `${m[1]} (${p.comm}) ${p.state} ${Array(18).fill("0").join(" ")} ${ticks} ${Array(30).fill("0").join(" ")}\n`;
  }
}

const LIVE_PID = 4242;

function opts(extra: { host?: string; command?: string; timeoutMs?: number; proc?: ProcProbe } = {}) {
  const err = new CaptureWriter();
  const proc = extra.proc ?? new FakeProcs().add(process.pid);
  return { err, o: { path, host: extra.host ?? "host-a", command: extra.command ?? "u7s up", log: new Log(err, { color: false }), timeoutMs: extra.timeoutMs, pollMs: 10, proc } };
}

/** deadPid is the pid of a process that has exited. */
function deadPid(): number {
  const p = Bun.spawnSync(["true"]);
  expect(pidAlive(p.pid)).toBe(false);
  return p.pid;
}

function writeLock(holder: object) {
  mkdirSync(join(path, ".."), { recursive: true });
  writeFileSync(path, JSON.stringify(holder));
}

/** holder is a lock record of this host taken a minute ago. */
function holder(extra: Partial<LockHolder> = {}): LockHolder {
  return { host: "host-a", pid: LIVE_PID, command: "u7s up", started: new Date(Date.now() - 60_000).toISOString(), ...extra };
}

describe("withNodeLock", () => {
  test("holds a 0600 file naming host, pid, command and start while fn runs; removes it after, also when fn throws", async () => {
    const { o } = opts();
    const seen = await withNodeLock(o, async () => {
      expect(statSync(path).mode & 0o777).toBe(0o600);
      return JSON.parse(readFileSync(path, "utf8"));
    });
    expect(seen).toMatchObject({ host: "host-a", pid: process.pid, command: "u7s up" });
    expect(Date.parse(seen.started)).toBeGreaterThan(0);
    expect(existsSync(path)).toBe(false);
    await expect(withNodeLock(o, async () => { throw new Error("boom"); })).rejects.toThrow("boom");
    expect(existsSync(path)).toBe(false);
  });

  test("a second holder waits for the first (saying so once, and for how long at most) and never overlaps it", async () => {
    const a = opts({ command: "u7s up" });
    const b = opts({ command: "u7s down" });
    const events: string[] = [];
    const first = withNodeLock(a.o, async () => {
      events.push("a-in");
      await Bun.sleep(120);
      events.push("a-out");
    });
    await Bun.sleep(10);
    const second = withNodeLock(b.o, async () => {
      events.push("b-in");
      events.push("b-out");
    });
    await Promise.all([first, second]);
    expect(events).toEqual(["a-in", "a-out", "b-in", "b-out"]);
    // no timeoutMs: the default, 10 minutes
    expect(DEFAULT_LOCK_TIMEOUT_MS).toBe(600_000);
    expect(b.err.lines().filter((l) => l.startsWith("waiting"))).toEqual([`waiting for u7s up (pid ${process.pid}) to finish with node u7s-node-a (at most 10 min)`]);
  });

  test("a live holder past the timeout: an error naming its host, pid, command and the wait; its lock stays", async () => {
    const h = holder({ command: "u7s kubeadm-init", started: "2026-01-01T00:00:00.000Z" });
    writeLock(h);
    const procs = new FakeProcs().add(LIVE_PID, { startMs: Date.parse("2025-12-31T23:59:59.000Z"), argv: ["/usr/local/bin/u7s", "kubeadm-init"] });
    const { o, err } = opts({ timeoutMs: 50, proc: procs });
    let ran = false;
    const e = (await withNodeLock(o, async () => { ran = true; }).catch((x: Error) => x)) as Error & { hint?: string };
    expect(ran).toBe(false);
    expect(e.message).toBe(`node u7s-node-a is still locked by u7s kubeadm-init (pid ${LIVE_PID} on host-a, since 2026-01-01T00:00:00.000Z) after waiting 1 s`);
    expect(e.hint).toContain(`rm ${path}`);
    expect(err.text).toBe(`waiting for u7s kubeadm-init (pid ${LIVE_PID}) to finish with node u7s-node-a (at most 1 s)\n`);
    expect(JSON.parse(readFileSync(path, "utf8"))).toEqual(h);
  });

  test("a lock left by a dead process of this host is recovered, with a note", async () => {
    const pid = deadPid();
    writeLock({ host: "host-a", pid, command: "u7s up", started: "2026-01-01T00:00:00.000Z" });
    const { o, err } = opts({ proc: realProc });
    expect(await withNodeLock(o, async () => "ran")).toBe("ran");
    expect(err.text).toBe(`note: removed a stale lock of u7s up (pid ${pid}, no longer running) on node u7s-node-a (${path})\n`);
    expect(existsSync(path)).toBe(false);
  });

  test("a pid now held by another process, not u7s (a killed u7s's pid reused): taken over at once, the note says why", async () => {
    const h = holder();
    writeLock(h);
    const procs = new FakeProcs().add(LIVE_PID, { startMs: Date.now() - 120_000, argv: ["sleep", "120"], comm: "sleep" });
    const { o, err } = opts({ proc: procs });
    expect(await withNodeLock(o, async () => "ran")).toBe("ran");
    expect(err.text).toBe(`note: removed a stale lock of u7s up (pid ${LIVE_PID}, now \`sleep 120\`, not u7s) on node u7s-node-a (${path})\n`);
  });

  test("a pid whose process started after the lock was taken is another process, even one that looks like u7s", async () => {
    const h = holder({ started: new Date(BOOT_MS + 3_600_000).toISOString() });
    writeLock(h);
    const since = BOOT_MS + 3_600_000 + 6_000;
    const procs = new FakeProcs().add(LIVE_PID, { startMs: since, argv: ["u7s", "up"] });
    const { o, err } = opts({ proc: procs });
    expect(await withNodeLock(o, async () => "ran")).toBe("ran");
    expect(err.text).toContain(`(pid ${LIVE_PID}, now a process that started ${new Date(since).toISOString()}, after the lock was taken ${h.started})`);
  });

  test("the start is read from /proc/PID/stat field 22 in clock ticks after /proc/stat's btime, whatever the name holds", async () => {
    const taken = BOOT_MS + 7_200_000;
    const procs = new FakeProcs();
    const judge = (startMs: number, extra: Partial<FakeProc> = {}) => {
      procs.add(LIVE_PID, { startMs, ...extra });
      return staleReason(holder({ started: new Date(taken).toISOString() }), procs);
    };
    // within the margin a clock step may cause: still the holder; past it: another process
    expect(judge(taken + 5_000)).toBeUndefined();
    expect(judge(taken + 5_010)).toContain("now a process that started");
    expect(judge(taken - 60_000)).toBeUndefined();
    // a name with spaces and parentheses does not shift the fields after it
    expect(judge(taken + 60_000, { comm: "a) (b c)" })).toBe(`now a process that started ${new Date(taken + 60_000).toISOString()}, after the lock was taken ${new Date(taken).toISOString()}`);
    // another USER_HZ: ticks are read in its unit
    procs.clockTicks = 250;
    expect(judge(taken + 60_000)).toContain(new Date(taken + 60_000).toISOString());
    expect(judge(taken + 1_000)).toBeUndefined();
  });

  test.each([
    ["u7s up", ["/opt/tools/anything", "--tenant", "7", "up"], undefined],
    ["u7s down -v", ["u7s", "down", "--volumes"], undefined],
    ["u7s port add", ["./u7s", "port", "add", "8080"], undefined],
    ["u7s up", ["bun", "main.ts", "up", "--no-init"], undefined],
    ["u7s up", ["up"], "now `up`, not u7s"],
    ["u7s up", ["u7s", "down"], "now `u7s down`, not u7s"],
    ["u7s up", ["bash"], "now `bash`, not u7s"],
    ["u7s up", [], "now `[kworker/0:1]`, not u7s"],
    ["u7s up", ["python3", "-c", "x".repeat(80)], `now \`python3 -c ${"x".repeat(46)}...\`, not u7s`],
    ["u7s up", ["y".repeat(60)], `now \`${"y".repeat(60)}\`, not u7s`],
    ["u7s up", ["y".repeat(61)], `now \`${"y".repeat(57)}...\`, not u7s`],
    ["make up", ["sleep", "1"], undefined],
    ["u7s", ["sleep", "1"], undefined],
  ] as const)("holder %p, process %p: %p", (command, argv, why) => {
    const procs = new FakeProcs().add(LIVE_PID, { argv: [...argv], comm: argv.length === 0 ? "kworker/0:1" : "x" });
    expect(staleReason(holder({ command }), procs)).toBe(why);
  });

  test("what cannot be read counts for the holder: no stat, no cmdline, no btime, no start recorded", () => {
    const procs = new FakeProcs().add(LIVE_PID, { argv: undefined, statReadable: false });
    expect(staleReason(holder(), procs)).toBeUndefined();
    expect(procs.calls).toEqual([`/proc/${LIVE_PID}/stat`, `/proc/${LIVE_PID}/cmdline`]);
    // started after the lock, but the boot time is unknown: judged by its arguments only
    const noBoot = new FakeProcs().add(LIVE_PID, { startMs: Date.now() + 60_000 });
    noBoot.btime = undefined;
    expect(staleReason(holder(), noBoot)).toBeUndefined();
    // a lock without `started` (an older u7s wrote it): the same
    const later = new FakeProcs().add(LIVE_PID, { startMs: Date.now() + 60_000 });
    expect(staleReason(holder({ started: "" }), later)).toBeUndefined();
    expect(staleReason(holder(), later)).toContain("now a process that started");
    // a stat without the name's closing parenthesis is not read (its second character is no state)
    const garbled = (stat: string): ProcProbe => ({ alive: () => true, clockTicks: 100, readFile: (p) => (p.endsWith("/stat") ? stat : p === "/proc/stat" ? "btime 1\n" : undefined) });
    expect(staleReason(holder(), garbled("xZ 0"))).toBeUndefined();
    // one cut short before starttime: no start, so no judgement by it
    expect(staleReason(holder(), garbled("4242 (u7s) S 1 2"))).toBeUndefined();
    expect(staleReason(holder(), garbled("4242 (u7s) Z 1 2"))).toBe("no longer running (a zombie)");
  });

  test("a process that rewrote its arguments (setproctitle: one string, no closing NUL) is shown whole", () => {
    const procs = new FakeProcs().add(LIVE_PID, { cmdline: "nginx: worker process", comm: "nginx" });
    expect(staleReason(holder(), procs)).toBe("now `nginx: worker process`, not u7s");
  });

  test("a zombie holds nothing; the name of a process without arguments comes from its stat", () => {
    expect(staleReason(holder(), new FakeProcs().add(LIVE_PID, { state: "Z", argv: [] }))).toBe("no longer running (a zombie)");
    expect(staleReason(holder(), new FakeProcs().add(LIVE_PID, { state: "S", argv: [], statReadable: false }))).toBe("now `[?]`, not u7s");
  });

  test("realProc reads this host's /proc: this test process started before now, USER_HZ is getconf's, its arguments are bun's", () => {
    const ticks = Bun.spawnSync(["getconf", "CLK_TCK"]).stdout.toString().trim();
    expect(CLOCK_TICKS).toBe(Number(ticks));
    expect(realProc.clockTicks).toBe(CLOCK_TICKS);
    expect(realProc.alive(process.pid)).toBe(true);
    expect(realProc.alive(deadPid())).toBe(false);
    const why = staleReason({ host: "h", pid: process.pid, command: "u7s test", started: "2000-01-01T00:00:00.000Z" }, realProc) ?? "";
    const since = Date.parse(/started (\S+),/.exec(why)?.[1] ?? "");
    expect(since).toBeLessThanOrEqual(Date.now());
    expect(since).toBeGreaterThan(Date.now() - 3_600_000);
    // `bun test ...`: holds "test", so a lock of "u7s test" taken now is ours
    expect(staleReason({ host: "h", pid: process.pid, command: "u7s test", started: new Date().toISOString() }, realProc)).toBeUndefined();
    expect(realProc.readFile(join(dir, "none"))).toBeUndefined();
  });

  test("the wait ends at the deadline even when the poll interval is longer; production polls every 250 ms", async () => {
    writeLock(holder());
    const { o } = opts({ timeoutMs: 50, proc: new FakeProcs().add(LIVE_PID) });
    const e = (await withNodeLock({ ...o, pollMs: 60_000 }, async () => "ran").catch((x: Error) => x)) as Error;
    expect(e.message).toContain("still locked by u7s up");
    expect(LOCK_POLL.ms).toBe(250);
  });

  test("without pollMs, a waiting command looks again every LOCK_POLL.ms", async () => {
    writeLock(holder());
    const procs = new FakeProcs().add(LIVE_PID);
    let looks = 0;
    procs.onAlive = () => looks++;
    const saved = LOCK_POLL.ms;
    LOCK_POLL.ms = 40;
    try {
      const { o } = opts({ timeoutMs: 150, proc: procs });
      await withNodeLock({ ...o, pollMs: undefined }, async () => "ran").catch(() => "timed out");
    } finally {
      LOCK_POLL.ms = saved;
    }
    // about 150 / 40 looks, never one per millisecond
    expect(looks).toBeGreaterThanOrEqual(2);
    expect(looks).toBeLessThanOrEqual(8);
  });

  test("pidAlive: only a positive whole pid can run", () => {
    for (const pid of [0, -1, 1.5, Number.NaN]) expect(pidAlive(pid)).toBe(false);
    expect(pidAlive(process.pid)).toBe(true);
  });

  test.each([
    [0, "0 s"],
    [50, "1 s"],
    [1_000, "1 s"],
    [59_000, "59 s"],
    [60_000, "1 min"],
    [90_000, "90 s"],
    [120_000, "2 min"],
    [DEFAULT_LOCK_TIMEOUT_MS, "10 min"],
  ])("waitWords(%p) = %p", (ms, words) => {
    expect(waitWords(ms)).toBe(words);
  });

  test("an unreadable lock file is left alone while it may be being written, and recovered once old", async () => {
    writeLock({});
    writeFileSync(path, "");
    const fresh = (await withNodeLock(opts({ timeoutMs: 100 }).o, async () => "ran").catch((e: Error) => e)) as Error & { hint?: string };
    expect(existsSync(path)).toBe(true);
    expect(fresh.message).toBe(`node u7s-node-a is locked: ${path} is being written by another command`);
    expect(fresh.hint).toBe(`try again; if it stays, remove it: rm ${path}`);
    const old = new Date(Date.now() - 60_000);
    utimesSync(path, old, old);
    const { o, err } = opts();
    expect(await withNodeLock(o, async () => "ran")).toBe("ran");
    expect(err.text).toBe(`note: removed an unreadable lock file on node u7s-node-a (${path})\n`);
  });

  test("a lock file still being written is waited for: its writer finishes, and then the lock is free", async () => {
    writeLock({});
    writeFileSync(path, "");
    setTimeout(() => rmSync(path), 80);
    const { o, err } = opts({ timeoutMs: 5_000 });
    expect(await withNodeLock(o, async () => "ran")).toBe("ran");
    expect(err.text).toBe("");
  });

  test.each([
    ["a pid that is not a number", { host: "host-a", pid: "1", command: "u7s up" }],
    ["no host", { pid: 1, command: "u7s up" }],
    ["a command that is not text", { host: "host-a", pid: 1, command: 7 }],
    ["not JSON", "{host"],
  ])("a record with %s is unreadable: waited for as being written", async (_what, record) => {
    writeLock({});
    writeFileSync(path, typeof record === "string" ? record : JSON.stringify(record));
    const e = (await withNodeLock(opts({ timeoutMs: 30 }).o, async () => "ran").catch((x: Error) => x)) as Error;
    expect(e.message).toContain("is being written by another command");
  });

  test("a name that exists but reads as missing (a dangling symlink) does not spin for ever: an error at the deadline", async () => {
    mkdirSync(join(path, ".."), { recursive: true });
    symlinkSync(join(dir, "nowhere"), path);
    const e = (await withNodeLock(opts({ timeoutMs: 50 }).o, async () => "ran").catch((x: Error) => x)) as Error & { hint?: string };
    expect(e.message).toBe(`cannot lock node u7s-node-a: ${path} exists but cannot be read`);
    expect(e.hint).toBe(`remove it: rm ${path}`);
  });

  test("a name that reads as missing for a while (a symlink whose target appears) is waited for until the deadline", async () => {
    mkdirSync(join(path, ".."), { recursive: true });
    symlinkSync(join(dir, "nowhere"), path);
    setTimeout(() => rmSync(path), 80);
    const { o, err } = opts({ timeoutMs: 5_000 });
    expect(await withNodeLock(o, async () => "ran")).toBe("ran");
    expect(err.text).toBe("");
  });

  test("a lock of an older u7s, without `started`: waited for while its holder runs, the error says no start", async () => {
    writeLock({ host: "host-a", pid: LIVE_PID, command: "u7s up" });
    const procs = new FakeProcs().add(LIVE_PID, { startMs: Date.now() + 60_000 });
    const e = (await withNodeLock(opts({ timeoutMs: 30, proc: procs }).o, async () => "ran").catch((x: Error) => x)) as Error;
    expect(e.message).toBe(`node u7s-node-a is still locked by u7s up (pid ${LIVE_PID} on host-a) after waiting 1 s`);
    writeLock({ host: "host-b", pid: LIVE_PID, command: "u7s up" });
    const other = (await withNodeLock(opts({ proc: procs }).o, async () => "ran").catch((x: Error) => x)) as Error;
    expect(other.message).toBe(`node u7s-node-a is locked by u7s up (pid ${LIVE_PID}) on another host, host-b`);
  });

  test("a lock from another host is never taken over, even with a pid dead here: the error names the host and how to remove it", async () => {
    const h = { host: "host-b", pid: deadPid(), command: "u7s up", started: "2026-01-01T00:00:00.000Z" };
    writeLock(h);
    const { o } = opts({ timeoutMs: 10_000, proc: realProc });
    const started = Date.now();
    const err = (await withNodeLock(o, async () => "ran").catch((e) => e)) as Error & { hint?: string };
    expect(Date.now() - started).toBeLessThan(2000); // no waiting: that host's processes cannot be seen from here
    expect(err.message).toBe(`node u7s-node-a is locked by u7s up (pid ${h.pid}) on another host, host-b, since 2026-01-01T00:00:00.000Z`);
    expect(err.hint).toBe(`if host-b is gone for good or does not run that command any more, remove the lock: rm ${path}`);
    expect(JSON.parse(readFileSync(path, "utf8"))).toEqual(h);
  });

  test.each([
    ["another start", { started: "2099-01-01T00:00:00.000Z" }],
    ["another pid", { pid: LIVE_PID }],
    ["another host", { host: "host-b" }],
  ])("release leaves a lock that is no longer ours (%s)", async (_what, change) => {
    const { o } = opts();
    let other: object = {};
    await withNodeLock(o, async () => {
      other = { ...JSON.parse(readFileSync(path, "utf8")), ...change };
      writeFileSync(path, JSON.stringify(other));
    });
    expect(JSON.parse(readFileSync(path, "utf8"))).toEqual(other);
  });

  test("a lock file that cannot be read at release does not hide fn's outcome", async () => {
    const { o } = opts();
    const got = await withNodeLock(o, async () => {
      rmSync(path);
      mkdirSync(path);
      return "ran";
    });
    expect(got).toBe("ran");
  });

  test("two processes recovering the same stale lock: one holds it at a time", async () => {
    writeLock({ host: "host-a", pid: deadPid(), command: "u7s up", started: "2026-01-01T00:00:00.000Z" });
    let inside = 0;
    let most = 0;
    const body = async () => {
      inside++;
      most = Math.max(most, inside);
      await Bun.sleep(30);
      inside--;
    };
    await Promise.all([withNodeLock(opts().o, body), withNodeLock(opts().o, body), withNodeLock(opts().o, body)]);
    expect(most).toBe(1);
  });

  test("a fresh lock taken between the judgement and the removal is never removed: its holder is waited for", async () => {
    writeLock(holder({ pid: 999_999 }));
    const procs = new FakeProcs().add(LIVE_PID, { argv: ["u7s", "down"] });
    const fresh = holder({ command: "u7s down", started: new Date().toISOString() });
    let once = true;
    procs.onAlive = (pid) => {
      if (pid !== 999_999 || !once) return;
      once = false;
      writeFileSync(path, JSON.stringify(fresh)); // another command recovered the lock and took it meanwhile
    };
    const { o, err } = opts({ timeoutMs: 60, proc: procs });
    const e = (await withNodeLock(o, async () => "ran").catch((x: Error) => x)) as Error;
    expect(e.message).toContain(`still locked by u7s down (pid ${LIVE_PID} on host-a`);
    expect(err.text).not.toContain("removed");
    expect(JSON.parse(readFileSync(path, "utf8"))).toEqual(fresh);
  });

  test("another command recovering the lock (its marker) is waited for; a marker left by a dead recovery is removed", async () => {
    writeLock({ host: "host-a", pid: deadPid(), command: "u7s up", started: "2026-01-01T00:00:00.000Z" });
    const marker = `${path}.recover`;
    writeFileSync(marker, "");
    setTimeout(() => rmSync(marker), 80);
    const first = opts({ timeoutMs: 5_000 });
    const t0 = Date.now();
    expect(await withNodeLock(first.o, async () => Date.now() - t0)).toBeGreaterThanOrEqual(70);
    expect(first.err.text).toContain("removed a stale lock");
    writeLock({ host: "host-a", pid: deadPid(), command: "u7s up", started: "2026-01-01T00:00:00.000Z" });
    writeFileSync(marker, "");
    const old = new Date(Date.now() - 60_000);
    utimesSync(marker, old, old);
    const second = opts({ timeoutMs: 5_000 });
    expect(await withNodeLock(second.o, async () => "ran")).toBe("ran");
    expect(second.err.text).toContain("removed a stale lock");
    expect(existsSync(marker)).toBe(false);
  });

  test("a lock directory that cannot be created, or a lock file that cannot be created or read: a U7sError naming the path", async () => {
    writeFileSync(join(dir, "u7s"), "a file where a directory should be");
    const err = (await withNodeLock(opts().o, async () => "ran").catch((e) => e)) as Error & { hint?: string };
    expect(err.name).toBe("U7sError");
    expect(err.message).toContain(`cannot use the node's lock file ${path}: `);
    expect(err.hint).toContain("XDG_STATE_HOME");
    rmSync(join(dir, "u7s"));
    // a directory where the lock file should be: it exists, and reading it fails
    mkdirSync(path, { recursive: true });
    const isDir = (await withNodeLock(opts().o, async () => "ran").catch((e) => e)) as Error;
    expect(isDir.message).toBe(`cannot use the node's lock file ${path}: illegal operation on a directory (EISDIR)`);
    // a name too long to create
    path = join(dir, "u7s", "host-a", "x".repeat(300));
    const long = (await withNodeLock(opts().o, async () => "ran").catch((e) => e)) as Error;
    expect(long.message).toContain(`cannot use the node's lock file ${path}: `);
    expect(long.message).toContain("ENAMETOOLONG");
    // a stale lock whose recovery marker (NAME.recover) cannot be created
    path = join(dir, "u7s", "host-a", "y".repeat(250));
    writeLock({ host: "host-a", pid: 999_999, command: "u7s up", started: "2026-01-01T00:00:00.000Z" });
    const marker = (await withNodeLock(opts().o, async () => "ran").catch((e) => e)) as Error;
    expect(marker.message).toContain(`cannot use the node's lock file ${path}: `);
    expect(marker.message).toContain("ENAMETOOLONG");
  });
});
