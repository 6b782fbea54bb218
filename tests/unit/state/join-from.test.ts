// `u7s up --join-from HOST`: on a home shared by the hosts, the control plane's join file is read
// from its host's config directory, with no copy.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UsageError } from "../../../lib/errors.ts";
import { joinFromPath } from "../../../lib/state/join-from.ts";
import { statePaths } from "../../../lib/state/paths.ts";
import { RecordingRunner, runCli } from "../../fixtures/fakes.ts";

let home = "";
beforeAll(() => {
  home = mkdtempSync(join(tmpdir(), "u7s-join-from-"));
  for (const [host, node] of [["cp1", "u7s-cp1"], ["two", "u7s-two"], ["two", "u7s-two-t1"]]) {
    const f = statePaths({ HOME: home }, host!, node!).joinFile;
    mkdirSync(join(f, ".."), { recursive: true });
    writeFileSync(f, "{}");
  }
  writeFileSync(join(home, "my-join.json"), "{}");
});
afterAll(() => rmSync(home, { recursive: true, force: true }));

const env = () => ({ HOME: home });
const problem = (value: string) => {
  try {
    return joinFromPath(env(), value);
  } catch (e) {
    return e instanceof UsageError ? `usage: ${e.message} | ${e.hint}` : String(e);
  }
};

describe("joinFromPath", () => {
  test("HOST: the one join file u7s join-command wrote for that host; HOST/NODE picks one of several; a file is itself", () => {
    expect(joinFromPath(env(), "cp1")).toBe(statePaths(env(), "cp1", "u7s-cp1").joinFile);
    expect(joinFromPath(env(), "two/u7s-two-t1")).toBe(statePaths(env(), "two", "u7s-two-t1").joinFile);
    expect(joinFromPath(env(), join(home, "my-join.json"))).toBe(join(home, "my-join.json"));
  });

  test("misses are usage errors saying what to run where", () => {
    expect(problem("two")).toContain("host two has join files of several nodes (u7s-two, u7s-two-t1)");
    expect(problem("two")).toContain("--join-from two/u7s-two");
    expect(problem("nohost")).toContain("no join file of host nohost");
    expect(problem("nohost")).toContain("run `u7s join-command` on nohost");
    expect(problem("cp1/u7s-other")).toContain("no join file at");
    expect(problem("../etc")).toContain("not a host name");
    expect(problem("a/b/c")).toContain("not a host name");
  });
});

describe("u7s up --join-from", () => {
  const joinFile = {
    kind: "u7s-join",
    version: 1,
    controlPlane: { nodeName: "u7s-cp1", hostIp: "192.0.2.10", portKubeApiserver: 6443, portFlannel: 8472, nodeSubnet: "10.100.250.0/24" },
    join: { endpoint: "u7s-cp1:6443", token: "abcdef.0123456789abcdef", caCertHashes: [`sha256:${"0f".repeat(32)}`] },
    created: "2025-01-01T00:00:00Z",
  };

  test("reads the control plane's join file from the shared home and validates it before anything is created", async () => {
    writeFileSync(statePaths(env(), "cp1", "u7s-cp1").joinFile, JSON.stringify(joinFile));
    const runner = new RecordingRunner();
    const r = await runCli(["up", "--join-from", "cp1"], { runner, env: { HOME: home, CONTAINER_ENGINE: "docker", HOSTNAME: "wk1", PORT_FLANNEL: "18472" }, host: { hostname: "wk1" } });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("PORT_FLANNEL=18472 differs from the cluster's 8472");
    expect(runner.calls).toEqual([]);
    const both = await runCli(["up", "--join-from", "cp1", "--join", "x.json"], { runner, env: { HOME: home, CONTAINER_ENGINE: "docker" } });
    expect(both.stderr).toContain("--join and --join-from do not go together");
    expect(runner.calls).toEqual([]);
  });
});
