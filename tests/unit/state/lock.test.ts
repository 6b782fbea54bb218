// The per-node lock: exclusive creation, waiting for a live holder, recovery of a dead one's lock
// on this host, never taking over another host's, and release only of our own file.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Log } from "../../../lib/log.ts";
import { pidAlive, withNodeLock } from "../../../lib/state/lock.ts";
import { CaptureWriter } from "../../fixtures/fakes.ts";

let dir = "";
let path = "";
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "u7s-lock-"));
  path = join(dir, "u7s", "host-a", "u7s-node-a", "lock");
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function opts(extra: { host?: string; command?: string; timeoutMs?: number } = {}) {
  const err = new CaptureWriter();
  return { err, o: { path, host: extra.host ?? "host-a", command: extra.command ?? "u7s up", log: new Log(err, { color: false }), timeoutMs: extra.timeoutMs, pollMs: 10 } };
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

  test("a second holder waits for the first (saying so once) and never overlaps it", async () => {
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
    expect(b.err.lines().filter((l) => l.startsWith("waiting"))).toEqual([`waiting for u7s up (pid ${process.pid}) to finish with node u7s-node-a`]);
  });

  test("a live holder past the timeout: an error naming its host, pid and command; its lock stays", async () => {
    const holder = { host: "host-a", pid: process.pid, command: "u7s kubeadm-init", started: "2026-01-01T00:00:00.000Z" };
    writeLock(holder);
    const { o } = opts({ timeoutMs: 50 });
    let ran = false;
    const err = await withNodeLock(o, async () => { ran = true; }).catch((e: Error) => e);
    expect(ran).toBe(false);
    expect((err as Error).message).toContain(`still locked by u7s kubeadm-init (pid ${process.pid} on host-a`);
    expect(JSON.parse(readFileSync(path, "utf8"))).toEqual(holder);
  });

  test("a lock left by a dead process of this host is recovered, with a note", async () => {
    const pid = deadPid();
    writeLock({ host: "host-a", pid, command: "u7s up", started: "2026-01-01T00:00:00.000Z" });
    const { o, err } = opts();
    expect(await withNodeLock(o, async () => "ran")).toBe("ran");
    expect(err.text).toContain(`removed a stale lock of u7s up (pid ${pid}, no longer running)`);
    expect(existsSync(path)).toBe(false);
  });

  test("an unreadable lock file is left alone while it may be being written, and recovered once old", async () => {
    writeLock({});
    writeFileSync(path, "");
    const fresh = await withNodeLock(opts({ timeoutMs: 100 }).o, async () => "ran").catch((e: Error) => e);
    expect(existsSync(path)).toBe(true);
    expect(fresh).not.toBe("ran");
    const old = new Date(Date.now() - 60_000);
    utimesSync(path, old, old);
    expect(await withNodeLock(opts().o, async () => "ran")).toBe("ran");
  });

  test("a lock from another host is never taken over, even with a pid dead here: the error names the host and how to remove it", async () => {
    const holder = { host: "host-b", pid: deadPid(), command: "u7s up", started: "2026-01-01T00:00:00.000Z" };
    writeLock(holder);
    const { o } = opts({ timeoutMs: 10_000 });
    const started = Date.now();
    const err = (await withNodeLock(o, async () => "ran").catch((e) => e)) as Error & { hint?: string };
    expect(Date.now() - started).toBeLessThan(2000); // no waiting: that host's processes cannot be seen from here
    expect(err.message).toContain("on another host, host-b");
    expect(err.hint).toContain(`rm ${path}`);
    expect(JSON.parse(readFileSync(path, "utf8"))).toEqual(holder);
  });

  test("release leaves a lock that is no longer ours", async () => {
    const { o } = opts();
    const other = { host: "host-a", pid: process.pid, command: "u7s down", started: "2099-01-01T00:00:00.000Z" };
    await withNodeLock(o, async () => writeFileSync(path, JSON.stringify(other)));
    expect(JSON.parse(readFileSync(path, "utf8"))).toEqual(other);
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

  test("a lock directory that cannot be created: a U7sError naming the path", async () => {
    writeFileSync(join(dir, "u7s"), "a file where a directory should be");
    const { o } = opts();
    const err = (await withNodeLock(o, async () => "ran").catch((e) => e)) as Error;
    expect(err.name).toBe("U7sError");
    expect(err.message).toContain(path);
  });
});
