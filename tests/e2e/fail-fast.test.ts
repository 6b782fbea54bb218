// End to end (issue 16): with the test user's inotify instances limited, `up` of one node too many exits
// non-zero in under 10 s naming fs.inotify.max_user_instances, and the nodes already running are untouched.
// dist/u7s on REAL rootless Docker and Podman as the unprivileged test user, with the systemd test image
// (`--no-init`).
//
// The limit is never the machine's (other tests run nodes meanwhile): since Linux 4.9 each user namespace
// has inotify limits of its own (/proc/sys/user/max_inotify_instances), and a rootless engine's nodes count
// against their namespace's limit as well as the host's. This file runs a Docker and a Podman of the test
// user's own, each in a user namespace of its own (their own XDG_RUNTIME_DIR: RootlessKit's namespace for the
// daemon, Podman's pause process; and their own storage under XDG_DATA_HOME), and lowers that namespace's
// limit only. Per uid in the namespace, a booted test node holds 5 instances as root (systemd 4, logind 1)
// and 1 as messagebus (dbus-daemon); u7s counts 6 per node. At 12, nodes 1-2 boot, and the 3rd: stopped by
// the preflight (12 - 2 × 6 < 6); with --skip-preflight at 10 its systemd gets none and stays in early boot
// for good, its journal full of "Failed to create inotify object", which up reads.
//
// Own names and ports: HOSTNAME fastfail-e2e, tenants 91-93 (Docker) and 95-97 (Podman): ports 12469..,
// 16533.., 18562.., 20340.. by the tenant formula.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { asTestUser, assertSuccess, eventually, loadEnginesEnv, runCommand, runU7s, show, TEST_ENGINES, type CommandResult, type TestEngine } from "./harness.ts";

const HOSTNAME = "fastfail-e2e";
const TENANTS: Record<TestEngine, readonly [number, number, number]> = { docker: [91, 92, 93], podman: [95, 96, 97] };
const node = (t: number) => `u7s-${HOSTNAME}-t${t}`;
/** UNDER: the issue's "under 10 s", measured on the wall clock around the whole `u7s up`. */
const UNDER_MS = 10_000;

const uid = () => loadEnginesEnv().U7S_TEST_UID;
const testHome = () => loadEnginesEnv().raw.U7S_TEST_HOME ?? "/home/u7stest";

/** OwnEngine is a rootless engine of the test user's own, in a user namespace of its own. */
class OwnEngine {
  constructor(readonly engine: TestEngine) {}
  /** dirs: its runtime directory (its own namespace, socket, pid files) and its data (images, containers). */
  get dirs() {
    return { XDG_RUNTIME_DIR: `/run/user/${uid()}/fastfail-e2e-${this.engine}`, XDG_DATA_HOME: `${testHome()}/.local/share/fastfail-e2e-${this.engine}` };
  }
  /** env: what points the engine CLI (and u7s) at it. */
  get env(): Record<string, string> {
    return { ...this.dirs, ...(this.engine === "docker" ? { DOCKER_HOST: `unix://${this.dirs.XDG_RUNTIME_DIR}/docker.sock` } : {}) };
  }
  /** cli runs its engine CLI as the test user. */
  async cli(args: readonly string[], opts: { input?: string; check?: boolean } = {}): Promise<CommandResult> {
    const argv = asTestUser([this.engine, ...args], this.env);
    const r = await runCommand(argv, { input: opts.input, timeoutMs: 120_000 });
    return opts.check === false ? r : assertSuccess(argv, r);
  }
  /** pidFile names the process whose user namespace is the engine's: Podman's pause process, rootless dockerd. */
  get pidFile(): string {
    return this.engine === "podman" ? `${this.dirs.XDG_RUNTIME_DIR}/libpod/tmp/pause.pid` : `${this.dirs.XDG_RUNTIME_DIR}/docker.pid`;
  }
  async pid(): Promise<number | undefined> {
    const f = Bun.file(this.pidFile);
    const pid = (await f.exists()) ? Number((await f.text()).trim()) : NaN;
    return Number.isInteger(pid) && pid > 1 ? pid : undefined;
  }
  /** inNamespace runs a command in the engine's user namespace as its owner (who may set its limits there). */
  async inNamespace(cmd: readonly string[], input?: string): Promise<CommandResult> {
    const argv = this.engine === "podman" ? asTestUser(["podman", "unshare", ...cmd], this.env) : asTestUser(["nsenter", "-U", "--preserve-credentials", "-t", String(await this.pid()), ...cmd]);
    return assertSuccess(argv, await runCommand(argv, { input }));
  }
  /** start makes its directories, starts it (Docker: the rootless daemon, detached) and loads the test image. */
  async start(): Promise<void> {
    assertSuccess(["mkdir"], await runCommand(asTestUser(["mkdir", "-p", "-m", "700", ...Object.values(this.dirs)])));
    if (this.engine === "docker") {
      // setsid, output to a file, cwd /: the daemon outlives this call and holds none of its pipes
      const log = `${this.dirs.XDG_RUNTIME_DIR}/dockerd.log`;
      Bun.spawn(["setsid", ...asTestUser(["dockerd-rootless.sh"], this.env)], { cwd: "/", stdin: "ignore", stdout: Bun.file(log), stderr: Bun.file(log) }).unref();
      await eventually("the own rootless dockerd answers", async () => ((await this.cli(["info", "--format", "{{json .SecurityOptions}}"], { check: false })).stdout.includes("rootless") ? true : undefined), 90);
    }
    // the archive is readable by root only: handed over on stdin
    const load = Bun.spawn(asTestUser([this.engine, "load"], this.env), { stdin: Bun.file(loadEnginesEnv().U7S_TEST_IMAGE_ARCHIVE), stdout: "pipe", stderr: "pipe" });
    const [out, err, code] = await Promise.all([new Response(load.stdout).text(), new Response(load.stderr).text(), load.exited]);
    if (code !== 0) throw new Error(`${this.engine} load failed (${code}): ${err}${out}`);
  }
  /** remove removes its containers, stops it and removes its directories. */
  async remove(): Promise<void> {
    if (existsSync(this.dirs.XDG_RUNTIME_DIR) && (await this.cli(["version"], { check: false })).exitCode === 0) {
      const ids = (await this.cli(["ps", "--all", "--quiet"], { check: false })).stdout.split("\n").filter(Boolean);
      if (ids.length > 0) await this.cli(["rm", "--force", ...ids], { check: false });
    }
    // no engine command from here on: each podman command would start its namespace again
    await eventually(`the own ${this.engine} removed`, async () => {
      const pid = await this.pid();
      if (pid !== undefined && existsSync(`/proc/${pid}`) && !(await Bun.file(`/proc/${pid}/stat`).text().catch(() => "")).includes(") Z ")) {
        try {
          // dockerd: TERM, it stops and RootlessKit with it; Podman's pause process: it holds nothing
          process.kill(pid, this.engine === "docker" ? "SIGTERM" : "SIGKILL");
        } catch {
          // gone already
        }
        return undefined;
      }
      // files in the storage belong to the test user's sub-IDs: removed as root
      const dirs = Object.values(this.dirs);
      const r = await runCommand(["rm", "-rf", "--one-file-system", ...dirs]);
      return r.exitCode === 0 && dirs.every((d) => !existsSync(d)) ? true : undefined;
    }, 90);
  }
}

for (const engine of TEST_ENGINES) {
describe(`up of one node too many, where the engine's user namespace allows 2 nodes' inotify instances (own rootless ${engine}, HOSTNAME fastfail-e2e)`, () => {
  const own = new OwnEngine(engine);
  const [T1, T2, T3] = TENANTS[engine];

  /** u7s runs dist/u7s on the own engine, timed. */
  const u7s = async (tenant: number, args: readonly string[]): Promise<CommandResult & { ms: number }> => {
    const started = performance.now();
    const r = await runU7s(engine, args, { env: { ...own.env, HOSTNAME, U7S_TENANT: String(tenant) }, timeoutMs: 240_000 });
    return { ...r, ms: performance.now() - started };
  };

  /** setLimit sets max_inotify_instances of the own engine's user namespace. */
  const setLimit = async (n: number): Promise<void> => {
    await own.inNamespace(["tee", "/proc/sys/user/max_inotify_instances"], `${n}\n`);
    expect((await own.inNamespace(["cat", "/proc/sys/user/max_inotify_instances"])).stdout.trim()).toBe(String(n));
  };

  /** objects lists the own engine's containers, volumes and networks of a node (what `up` would create). */
  const objects = async (t: number): Promise<string[]> => {
    const names = (r: CommandResult) => r.stdout.split("\n").filter((l) => l.startsWith(node(t)));
    const [c, v, n] = await Promise.all([
      own.cli(["ps", "--all", "--format", "{{.Names}}"]),
      own.cli(["volume", "ls", "--format", "{{.Name}}"]),
      own.cli(["network", "ls", "--format", "{{.Name}}"]),
    ]);
    return [...names(c), ...names(v), ...names(n)];
  };

  /** runningNodes tells each running node's container ID and what its systemd says. */
  const runningNodes = async (): Promise<string[]> => {
    const out: string[] = [];
    for (const t of [T1, T2]) {
      const id = (await own.cli(["inspect", "--format", "{{.Id}} {{.State.Status}}", node(t)])).stdout.trim();
      const systemd = (await own.cli(["exec", node(t), "systemctl", "is-system-running"], { check: false })).stdout.trim();
      out.push(`${id} ${systemd}`);
    }
    return out;
  };

  let running: string[] = [];

  beforeAll(async () => {
    await own.remove();
    await own.start();
    const env = loadEnginesEnv();
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
    await own.remove();
  }, 180_000);

  test("the preflight counts the running nodes against the namespace's limit: stopped in under 10 s, naming fs.inotify.max_user_instances, nothing created", async () => {
    try {
      const r = await u7s(T3, ["up", "--no-init", "--timeout", "60", "--image", loadEnginesEnv().U7S_TEST_IMAGE]);
      expect(r.exitCode, show(r)).toBe(1);
      expect(r.stderr).toContain("error: preflight check failed: fs.inotify.max_user_instances is 12 in the engine's user namespace");
      expect(r.stderr).toContain(`the 2 nodes this user runs on ${engine} hold about 12`);
      expect(r.stderr).toContain(`hint: as this user, in the engine's user namespace (${engine === "podman" ? "`podman unshare`" : "`nsenter -U --preserve-credentials -t $(cat $XDG_RUNTIME_DIR/docker.pid)`"}): echo 512 > /proc/sys/user/max_inotify_instances`);
      expect(r.ms).toBeLessThan(UNDER_MS);
      expect(await objects(T3)).toEqual([]);
      expect(await runningNodes()).toEqual(running);
    } finally {
      // (only when the test fails: the next tests start without that node)
      if ((await objects(T3)).length > 0) await u7s(T3, ["down", "-v"]);
    }
  }, 60_000);

  // --skip-preflight: only the node's own log can tell
  // At 10 the 3rd node's systemd gets no instance and logs "Failed to create inotify object" for good. (At 12 it
  // gets 2 and mostly boots degraded, which up reports as well, but now and then it stalled in early boot
  // without logging an inotify error: nothing to read then, and up waits out --timeout.)
  test.each([[10, "its systemd gets none and stays in early boot"]])("limit %d, --skip-preflight (%s): the journal names fs.inotify.max_user_instances and the fix in under 10 s; the others untouched", async (limit) => {
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
}
