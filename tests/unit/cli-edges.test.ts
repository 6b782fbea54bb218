import { describe, expect, test } from "bun:test";
import { runCli } from "../fixtures/fakes.ts";
import pkg from "../../package.json" with { type: "json" };

const config = (r: { stdout: string }) => Object.fromEntries(r.stdout.trim().split("\n").map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));

describe("argv edges", () => {
  test.each([["--version"], ["-v"]])("u7s %s prints the version", async (flag) => {
    const r = await runCli([flag]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`u7s ${pkg.version}`);
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

  test.each([
    // [env, flags, expected HOST_IP, expected HOST_IP_INTERFACE]
    [{ HOST_IP: "203.0.113.1", HOST_IP_INTERFACE: "ib0" }, [], "203.0.113.1", ""],
    [{ HOST_IP: "203.0.113.1" }, ["--host-ip-interface", "ib0"], "198.51.100.7", "ib0"],
    [{ HOST_IP_INTERFACE: "ib0" }, ["--host-ip", "203.0.113.9"], "203.0.113.9", ""],
    [{ HOST_IP_INTERFACE: "ib0" }, [], "198.51.100.7", "ib0"],
  ] as const)("HOST_IP precedence: env %o flags %o -> %s", async (env, flags, ip, iface) => {
    const r = await runCli(["config", ...flags], { env: { ...env } });
    expect(r.code).toBe(0);
    expect(config(r)).toMatchObject({ HOST_IP: ip, HOST_IP_INTERFACE: iface });
  });
});
