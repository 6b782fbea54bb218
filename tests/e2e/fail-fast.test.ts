// End to end (issue 16): with the test user's inotify instances limited, `up` of one node too many exits
// non-zero in under 10 s naming fs.inotify.max_user_instances, and the nodes already running are untouched.
// dist/u7s on REAL rootless Podman as the unprivileged test user, with the systemd test image (`--no-init`).
//
// The limit is never the machine's (other tests run nodes meanwhile): since Linux 4.9 each user namespace
// has inotify limits of its own (/proc/sys/user/max_inotify_instances), and a rootless engine's nodes count
// against their namespace's limit as well as the host's. This file runs a Podman of the test user's own,
// in a user namespace of its own (its own XDG_RUNTIME_DIR, so its own pause process, and its own storage),
// and lowers that namespace's limit only. Per uid in the namespace, a booted test node holds 5 instances
// as root (systemd 4, logind 1) and 1 as messagebus (dbus-daemon); u7s counts 6 per node. At 12, nodes 1-2
// boot, and the 3rd: stopped by the preflight (12 - 2 × 6 < 6); with --skip-preflight its systemd gets 2
// and boots degraded, its journal full of "Failed to create inotify object"; at 10 it gets none and stays
// in early boot for good. Both are read from the node's journal.
//
// Own names and ports: HOSTNAME fastfail-e2e, tenants 91-93 (ports 12469.., 16533.., 18562.., 20340..).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { asTestUser, assertSuccess, eventually, loadEnginesEnv, runCommand, runU7s, show, type CommandResult } from "./harness.ts";

const HOSTNAME = "fastfail-e2e";
const [T1, T2, T3] = [91, 92, 93] as const;
const node = (t: number) => `u7s-${HOSTNAME}-t${t}`;
/** UNDER: the "under 10 s", measured on the wall clock around the whole `u7s up`. */
const UNDER_MS = 10_000;

const uid = () => loadEnginesEnv().U7S_TEST_UID;
const testHome = () => loadEnginesEnv().raw.U7S_TEST_HOME ?? "/home/u7stest";
/** OWN: the environment of the test user's own Podman (its own user namespace and storage). */
const own = () => ({ XDG_RUNTIME_DIR: `/run/user/${uid()}/fastfail-e2e`, XDG_DATA_HOME: `${testHome()}/.local/share/fastfail-e2e` });

/** podman runs the test user's own Podman. */
async function podman(args: readonly string[], opts: { input?: string; check?: boolean } = {}): Promise<CommandResult> {
  const argv = asTestUser(["podman", ...args], own());
  const r = await runCommand(argv, { input: opts.input, timeoutMs: 120_000 });
  return opts.check === false ? r : assertSuccess(argv, r);
}

/** u7s runs dist/u7s on the test user's own Podman, timed. */
async function u7s(tenant: number, args: readonly string[]): Promise<CommandResult & { ms: number }> {
  const started = performance.now();
  const r = await runU7s("podman", args, { env: { ...own(), HOSTNAME, U7S_TENANT: String(tenant) }, timeoutMs: 240_000 });
  return { ...r, ms: performance.now() - started };
}

/** setLimit sets max_inotify_instances of the own Podman's user namespace (its owner may, inside it). */
async function setLimit(n: number): Promise<void> {
  await podman(["unshare", "tee", "/proc/sys/user/max_inotify_instances"], { input: `${n}\n` });
  expect((await podman(["unshare", "cat", "/proc/sys/user/max_inotify_instances"])).stdout.trim()).toBe(String(n));
}

/** objects lists the own Podman's containers, volumes and networks of a node (what `up` would create). */
async function objects(t: number): Promise<string[]> {
  const names = (r: CommandResult) => r.stdout.split("\n").filter((l) => l.startsWith(node(t)));
  const [c, v, n] = await Promise.all([
    podman(["ps", "--all", "--format", "{{.Names}}"]),
    podman(["volume", "ls", "--format", "{{.Name}}"]),
    podman(["network", "ls", "--format", "{{.Name}}"]),
  ]);
  return [...names(c), ...names(v), ...names(n)];
}

/** runningNodes tells each running node's container ID and what its systemd says. */
async function runningNodes(): Promise<string[]> {
  const out: string[] = [];
  for (const t of [T1, T2]) {
    const id = (await podman(["inspect", "--format", "{{.Id}} {{.State.Status}}", node(t)])).stdout.trim();
    const systemd = (await podman(["exec", node(t), "systemctl", "is-system-running"], { check: false })).stdout.trim();
    out.push(`${id} ${systemd}`);
  }
  return out;
}

/** removeOwnPodman removes every container of the own Podman, stops its user namespace and removes its directories. */
async function removeOwnPodman(): Promise<void> {
  // a u7s cut off by a failed test may still be running, and its podman start the namespace again: retried
  await eventually("the own Podman removed", async () => {
    await podman(["rm", "--all", "--force", "--time", "0"], { check: false });
    const pause = Bun.file(`${own().XDG_RUNTIME_DIR}/libpod/tmp/pause.pid`);
    const pid = (await pause.exists()) ? Number((await pause.text()).trim()) : NaN;
    if (Number.isInteger(pid) && pid > 1) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone already
      }
    }
    // files in the storage belong to the test user's sub-IDs: removed as root
    const dirs = Object.values(own());
    const r = await runCommand(["rm", "-rf", "--one-file-system", ...dirs]);
    return r.exitCode === 0 && dirs.every((d) => !existsSync(d)) ? true : undefined;
  }, 60);
}

describe("up of one node too many, where the engine's user namespace allows 2 nodes' inotify instances (own Podman, HOSTNAME fastfail-e2e)", () => {
  let running: string[] = [];

  beforeAll(async () => {
    await removeOwnPodman();
    assertSuccess(["mkdir"], await runCommand(asTestUser(["mkdir", "-p", "-m", "700", ...Object.values(own())])));
    // the test image into the own storage (the archive is readable by root only: handed over on stdin)
    const env = loadEnginesEnv();
    const load = Bun.spawn(asTestUser(["podman", "load"], own()), { stdin: Bun.file(env.U7S_TEST_IMAGE_ARCHIVE), stdout: "pipe", stderr: "pipe" });
    const [out, err, code] = await Promise.all([new Response(load.stdout).text(), new Response(load.stderr).text(), load.exited]);
    if (code !== 0) throw new Error(`podman load failed (${code}): ${err}${out}`);
    // a fresh user namespace is unlimited; 12 is room for 2 test nodes
    await setLimit(12);
    for (const t of [T1, T2]) {
      const r = await u7s(t, ["up", "--no-init", "--image", env.U7S_TEST_IMAGE]);
      expect(r.exitCode, show(r)).toBe(0);
    }
    running = await runningNodes();
    expect(running.map((l) => l.split(" ").slice(1).join(" "))).toEqual(["running running", "running running"]);
  }, 240_000);

  afterAll(async () => {
    await removeOwnPodman();
  }, 120_000);

  test("the preflight counts the running nodes against the namespace's limit: stopped in under 10 s, naming fs.inotify.max_user_instances, nothing created", async () => {
    try {
      const r = await u7s(T3, ["up", "--no-init", "--timeout", "60", "--image", loadEnginesEnv().U7S_TEST_IMAGE]);
      expect(r.exitCode, show(r)).toBe(1);
      expect(r.stderr).toContain("error: preflight check failed: fs.inotify.max_user_instances is 12 in the engine's user namespace");
      expect(r.stderr).toContain("the 2 nodes this user runs on podman hold about 12");
      expect(r.stderr).toContain("hint: as this user, in the engine's user namespace (`podman unshare`): echo 512 > /proc/sys/user/max_inotify_instances");
      expect(r.ms).toBeLessThan(UNDER_MS);
      expect(await objects(T3)).toEqual([]);
      expect(await runningNodes()).toEqual(running);
    } finally {
      // (only when the test fails: the next tests start without that node)
      if ((await objects(T3)).length > 0) await u7s(T3, ["down", "-v"]);
    }
  }, 60_000);

  // --skip-preflight: only the node's own log can tell
  test.each([
    [12, "its systemd gets 2 instances and boots degraded"],
    [10, "its systemd gets none and stays in early boot"],
  ])("limit %d, --skip-preflight (%s): the journal names fs.inotify.max_user_instances and the fix in under 10 s; the others untouched", async (limit) => {
    await setLimit(limit);
    try {
      // --timeout 60: without the journal, up would wait it out (and end before the test does)
      const r = await u7s(T3, ["up", "--no-init", "--skip-preflight", "--timeout", "60", "--image", loadEnginesEnv().U7S_TEST_IMAGE]);
      expect(r.exitCode, show(r)).toBe(1);
      expect(r.stderr).toContain(`error: node ${node(T3)} cannot boot: the user's inotify instances are used up (fs.inotify.max_user_instances)`);
      expect(r.stderr).toContain("the node logged: Failed to create inotify object: Too many open files");
      expect(r.stderr).toContain("hint: raise the limit: echo fs.inotify.max_user_instances=512 | sudo tee -a /etc/sysctl.d/99-usernetes.conf && sudo sysctl -w fs.inotify.max_user_instances=512");
      expect(r.stderr).not.toContain("--timeout");
      expect(r.ms).toBeLessThan(UNDER_MS);
      expect(await runningNodes()).toEqual(running);
      // what it created is left as after any failed boot, and `u7s down -v` removes it
      expect((await objects(T3)).sort()).toEqual([node(T3), node(T3), `${node(T3)}-etc`, `${node(T3)}-opt`, `${node(T3)}-var`].sort());
    } finally {
      const down = await u7s(T3, ["down", "-v"]);
      expect(down.exitCode, show(down)).toBe(0);
      await setLimit(12);
    }
    expect(await objects(T3)).toEqual([]);
    expect(await runningNodes()).toEqual(running);
  }, 120_000);
});
