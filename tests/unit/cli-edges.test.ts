import { describe, expect, test } from "bun:test";
import { runCli } from "../fixtures/fakes.ts";
import { wrongRows } from "../fixtures/table.ts";
import pkg from "../../package.json" with { type: "json" };

const config = (r: { stdout: string }) => Object.fromEntries(r.stdout.trim().split("\n").map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));

describe("argv edges", () => {
  test("u7s --version and u7s -v print the version", async () => {
    const got = async (flag: string) => {
      const r = await runCli([flag]);
      return [r.code, r.stdout.includes(`u7s ${pkg.version}`)];
    };
    expect(await wrongRows(["--version", "-v"].map((f) => [f, [0, true]] as const), got)).toEqual([]);
  });

  test("a command flag before the command is a usage error, not a command", async () => {
    const r = await runCli(["--port-etcd", "1", "config"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown flag --port-etcd before the command");
    expect(r.runner.calls).toEqual([]);
  });

  test("global flags may come first", async () => {
    expect((await runCli(["--debug", "version"])).code).toBe(0);
  });
});

describe("settings edges", () => {
  test("CONTAINER_ENGINE_TYPE gives the kind of an engine whose name does not say it", async () => {
    const r = await runCli(["config"], { env: { CONTAINER_ENGINE: "/opt/bin/engine", CONTAINER_ENGINE_TYPE: "podman" } });
    expect(r.code).toBe(0);
    expect(config(r)).toMatchObject({ CONTAINER_ENGINE: "/opt/bin/engine", CONTAINER_ENGINE_TYPE: "podman" });
  });

  test("invalid ports are not also reported as duplicates", async () => {
    const r = await runCli(["config"], { env: { PORT_ETCD: "0", PORT_KUBELET: "0" } });
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split("\n")).toHaveLength(2);
  });

  test("HOST_IP precedence: a flag beats a variable; between two variables (or two flags) HOST_IP beats HOST_IP_INTERFACE", async () => {
    const rows: [[Record<string, string>, string[]], [number, string, string]][] = [
      [[{ HOST_IP: "203.0.113.1", HOST_IP_INTERFACE: "ib0" }, []], [0, "203.0.113.1", ""]],
      [[{ HOST_IP: "203.0.113.1" }, ["--host-ip-interface", "ib0"]], [0, "198.51.100.7", "ib0"]],
      [[{ HOST_IP_INTERFACE: "ib0" }, ["--host-ip", "203.0.113.9"]], [0, "203.0.113.9", ""]],
      [[{ HOST_IP_INTERFACE: "ib0" }, []], [0, "198.51.100.7", "ib0"]],
    ];
    const got = async ([env, flags]: [Record<string, string>, string[]]) => {
      const r = await runCli(["config", ...flags], { env });
      const c = config(r);
      return [r.code, c.HOST_IP, c.HOST_IP_INTERFACE];
    };
    expect(await wrongRows(rows, got)).toEqual([]);
  });
});
