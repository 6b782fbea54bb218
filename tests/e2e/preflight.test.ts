/**
 * `up` runs check-preflight's host checks before it creates anything, as upstream's `make up`
 * depends on check-preflight: a strict rp_filter in a test host's engine network namespace (where
 * every cross-host VXLAN packet would be dropped, usernetes#338) makes `up` exit 1 naming it, with
 * nothing created; `--skip-preflight` goes past it. (The node lock's stale-pid case, on the local
 * Docker, is in stale-lock.test.ts: the test runner runs the test hosts' files and the local engines'
 * files side by side, tests/run.ts.)
 *
 * Own names: tenant 7 on the two test hosts (tests/setup-hosts.sh). The strict rp_filter is set only for the seconds `up` needs to refuse it and is put
 * back in a finally block (and again in afterAll): other tests create nodes on the same hosts.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  assertSuccess,
  hostEngineCli,
  loadHostsEnv,
  runOnHost,
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
