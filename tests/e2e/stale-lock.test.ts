/**
 * The node lock: a lock whose pid now belongs to another process of the user (a killed u7s's pid
 * reused) is taken over at once, with a note saying why; that process is left alone.
 *
 * Own names: HOSTNAME e2e-pl-docker on the local Docker.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { asTestUser, assertSuccess, cleanupNode, runCommand, runU7s, show } from "./harness.ts";

const TIMEOUT_MS = 300_000;

describe("a stale lock whose pid was reused (local Docker, HOSTNAME e2e-pl-docker)", () => {
  const HOSTNAME = "e2e-pl-docker";
  let stateHome = "";
  let sleeper = 0;
  let lockPath = "";
  beforeAll(async () => {
    await cleanupNode("docker", `u7s-${HOSTNAME}`);
    const tmp = assertSuccess(["mktemp"], await runCommand(asTestUser(["mktemp", "-d", "/tmp/u7s-e2e-pl-state-XXXXXX"])));
    stateHome = tmp.stdout.trim();
    // another process of the user: what a killed u7s's pid may belong to next
    const sleep = assertSuccess(["sleep"], await runCommand(asTestUser(["sh", "-c", "sleep 120 </dev/null >/dev/null 2>&1 & echo $!"])));
    sleeper = Number(sleep.stdout.trim());
    const host = assertSuccess(["hostname"], await runCommand(asTestUser(["hostname"]))).stdout.trim();
    lockPath = `${stateHome}/u7s/${host}/u7s-${HOSTNAME}/lock`;
  }, TIMEOUT_MS);
  afterAll(async () => {
    if (sleeper > 0) await runCommand(["kill", String(sleeper)]);
    if (stateHome) await runCommand(["rm", "-rf", stateHome]);
  });

  /** plant writes the lock a killed `u7s up` of this host would have left, naming the sleeper's pid. */
  async function plant(started: Date): Promise<string> {
    const host = lockPath.split("/").at(-3)!;
    const text = JSON.stringify({ host, pid: sleeper, command: "u7s up", started: started.toISOString() });
    const argv = asTestUser(["sh", "-c", 'umask 077 && mkdir -p "${0%/*}" && cat > "$0"', lockPath]);
    assertSuccess(argv, await runCommand(argv, { input: `${text}\n` }));
    return started.toISOString();
  }

  /** startOf is when the sleeper started, as u7s computes it from /proc. */
  function startOf(pid: number): number {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const ticks = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]);
    const btime = Number(/^btime (\d+)$/m.exec(readFileSync("/proc/stat", "utf8"))![1]);
    return btime * 1000 + ticks * 10;
  }

  test.each([
    ["taken before that process started", -60_000, "now a process that started"],
    ["taken after it started, but it is not u7s", 30_000, "now `sleep 120`, not u7s"],
  ] as const)(
    "a lock %s is taken over at once, with a note saying why; the process is left alone",
    async (_what, offsetMs, why) => {
      const started = await plant(new Date(startOf(sleeper) + offsetMs));
      const r = await runU7s("docker", ["down"], { env: { HOSTNAME, XDG_STATE_HOME: stateHome }, timeoutMs: 60_000 });
      expect(r.exitCode, show(r)).toBe(0);
      expect(r.stderr).not.toContain("waiting for");
      expect(r.stderr).toContain(`note: removed a stale lock of u7s up (pid ${sleeper}, ${why}`);
      if (offsetMs < 0) expect(r.stderr).toContain(`after the lock was taken ${started})`);
      expect((await runCommand(["kill", "-0", String(sleeper)])).exitCode).toBe(0);
      expect((await runCommand(["test", "-e", lockPath])).exitCode).toBe(1);
    },
    TIMEOUT_MS,
  );
});
