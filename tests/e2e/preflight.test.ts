/**
 * `up` runs check-preflight's host checks before it creates anything, as upstream's `make up`
 * depends on check-preflight: a strict rp_filter in a test host's engine network namespace (where
 * every cross-host VXLAN packet would be dropped, usernetes#338) makes `up` exit 1 naming it, with
 * nothing created; `--skip-preflight` goes past it. And the node lock: a lock whose pid now belongs
 * to another process of the user (a killed u7s's pid reused) is taken over at once, with a note.
 *
 * Own names: tenant 7 on the two test hosts (tests/setup-hosts.sh), HOSTNAME e2e-pl-docker on the
 * local Docker. The strict rp_filter is set only for the seconds `up` needs to refuse it and is put
 * back in a finally block (and again in afterAll): other tests create nodes on the same hosts.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import {
  asTestUser,
  assertSuccess,
  cleanupNode,
  hostEngineCli,
  loadHostsEnv,
  runCommand,
  runOnHost,
  runU7s,
  runU7sOnHost,
  show,
  type HostsEnv,
  type TestHost,
} from "./harness.ts";

const TIMEOUT_MS = 300_000;
const TENANT = "7";
const KEY = "net.ipv4.conf.default.rp_filter";

let hosts: HostsEnv;
beforeAll(() => {
  hosts = loadHostsEnv();
});

/** engineNetns builds the argv that runs cmd as the host's user in its rootless engine's network namespace, as u7s's rp_filter probe enters it. */
async function engineNetns(host: TestHost, cmd: readonly string[]): Promise<string[]> {
  if (host.engine === "podman") return ["podman", "unshare", "--rootless-netns", ...cmd];
  // rootless Docker: the namespaces of rootlesskit's child (newer dockerd-rootless.sh) or of dockerd in them
  const runtimeDir = hosts.raw[`U7S_HOST_${host.id.toUpperCase()}_XDG_RUNTIME_DIR`];
  for (const file of [`${runtimeDir}/dockerd-rootless/child_pid`, `${runtimeDir}/docker.pid`]) {
    const pid = (await runOnHost(host, ["cat", file])).stdout.trim();
    if (/^\d+$/.test(pid)) return ["nsenter", "-U", "--preserve-credentials", "-n", "-t", pid, ...cmd];
  }
  throw new Error(`host ${host.id}: no pid file of rootless Docker under ${runtimeDir}`);
}

/** rpFilter reads net.ipv4.conf.default.rp_filter in the host's engine namespace. */
async function rpFilter(host: TestHost): Promise<string> {
  const argv = await engineNetns(host, ["sysctl", "-n", KEY]);
  return assertSuccess(argv, await runOnHost(host, argv)).stdout.trim();
}

/** setRpFilter writes it. */
async function setRpFilter(host: TestHost, value: string): Promise<void> {
  const argv = await engineNetns(host, ["sysctl", "-w", `${KEY}=${value}`]);
  assertSuccess(argv, await runOnHost(host, argv));
}

/** nodeName is this test's node on the host: NODE_NAME of tenant 7. */
async function nodeName(host: TestHost): Promise<string> {
  const r = await runU7sOnHost(host, ["config", "--json", "--tenant", TENANT]);
  return String(JSON.parse(assertSuccess(["u7s", "config"], r).stdout).NODE_NAME);
}

/** leftovers lists what exists on the host's engine under the node's names: container, network, volumes. */
async function leftovers(host: TestHost, node: string): Promise<string[]> {
  const found: string[] = [];
  const exists = async (args: string[]) => (await hostEngineCli(host, args, { check: false })).exitCode === 0;
  if (await exists(["container", "inspect", node])) found.push(`container ${node}`);
  if (await exists(["network", "inspect", node])) found.push(`network ${node}`);
  for (const v of ["var", "opt", "etc"]) if (await exists(["volume", "inspect", `${node}-${v}`])) found.push(`volume ${node}-${v}`);
  return found;
}

/** removeNode removes exactly this test's node on the host (never another's). */
async function removeNode(host: TestHost, node: string): Promise<void> {
  await runU7sOnHost(host, ["down", "-v", "--tenant", TENANT], { timeoutMs: 240_000 });
  const quiet = { check: false, timeoutMs: 120_000 } as const;
  await hostEngineCli(host, ["rm", "-f", node], quiet);
  await hostEngineCli(host, ["volume", "rm", "-f", `${node}-var`, `${node}-opt`, `${node}-etc`], quiet);
  await hostEngineCli(host, ["network", "rm", node], quiet);
}

describe("up runs the preflight first (test hosts, tenant 7)", () => {
  const restore: [TestHost, string][] = [];
  afterAll(async () => {
    for (const [host, value] of restore) await setRpFilter(host, value).catch(() => {});
  });

  test.each(["a", "b"] as const)(
    "host %s: a strict rp_filter in the engine's namespace makes up exit 1 naming it, nothing created; --skip-preflight goes past it",
    async (id) => {
      const host = hosts[id];
      const node = await nodeName(host);
      await removeNode(host, node);
      const before = await rpFilter(host);
      expect(before).not.toBe("1"); // the hosts are set up loose; a strict one would fail every cross-host test
      restore.push([host, before]);
      const up = (extra: string[]) => runU7sOnHost(host, ["up", "--no-init", "--tenant", TENANT, ...extra], { timeoutMs: 240_000 });
      let refused;
      let skipped;
      try {
        await setRpFilter(host, "1");
        refused = await up(["--image", hosts.testImage]);
        // past the preflight, up stops at the next check, an image that is not there: nothing is built or pulled
        skipped = await up(["--skip-preflight", "--image", "localhost/u7s-e2e-pl-missing:none"]);
      } finally {
        await setRpFilter(host, before);
      }
      expect(await rpFilter(host)).toBe(before);
      expect(refused.exitCode, show(refused)).toBe(1);
      expect(refused.stderr).toContain(`error: preflight check failed: ${KEY} is 1 (strict) in the engine's network namespace`);
      expect(refused.stderr).toContain("--skip-preflight");
      expect(skipped.exitCode, show(skipped)).not.toBe(0);
      expect(skipped.stderr).not.toContain(KEY);
      expect(skipped.stderr).toContain("localhost/u7s-e2e-pl-missing:none");
      expect(await leftovers(host, node)).toEqual([]);
    },
    TIMEOUT_MS,
  );

  test("host a: with rp_filter loose again, up passes the preflight and creates the node", async () => {
    const host = hosts.a;
    const node = await nodeName(host);
    try {
      const r = await runU7sOnHost(host, ["up", "--no-init", "--tenant", TENANT, "--image", hosts.testImage], { timeoutMs: 240_000 });
      expect(r.exitCode, show(r)).toBe(0);
      expect(r.stderr).not.toContain("preflight check");
      expect(r.stderr).toContain(`node ${node} is up`);
    } finally {
      await removeNode(host, node);
    }
    expect(await leftovers(host, node)).toEqual([]);
  }, TIMEOUT_MS);
});

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
