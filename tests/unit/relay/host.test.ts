// lib/relay/host.ts and the node spec with the relay: where the relay's files live, what the node
// mounts, that the engine does not publish PORT_FLANNEL, and how a running host side is recognised.
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { resolveNodeConfig } from "../../../lib/config/resolve.ts";
import { nodeSpec, RELAY_ENV, settingsRecord, configFromSettings, settingsDiff } from "../../../lib/node/spec.ts";
import { hostRelayPid, isRelayMeta, NODE_RELAY_DIR, NODE_SOCKET_DIR, prepareRelayDirs, RELAY_UNIT, RELAY_UNIT_TEXT, relayPaths } from "../../../lib/relay/host.ts";
import { FakeHost } from "../../fixtures/fakes.ts";

const ENV = { HOME: "/home/u", XDG_RUNTIME_DIR: "/run/user/1000" };
const config = (env: Record<string, string> = {}) =>
  resolveNodeConfig({ flags: {}, env: { CONTAINER_ENGINE: "docker", HOSTNAME: "host-a", HOST_IP: "10.0.0.1", ...env }, host: new FakeHost({ binaries: ["docker"] }) });
const INPUT = { image: "img", hostPaths: { boot: false, libModules: false }, bypass4netns: false };

let tmp: string | undefined;
afterEach(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
  tmp = undefined;
});

describe("relayPaths", () => {
  test("the socket in the runtime directory, per host and node; the binary under XDG_DATA_HOME; the log under XDG_STATE_HOME", () => {
    expect(relayPaths(ENV, "login1", "u7s-login1-t3")).toEqual({
      binDir: "/home/u/.local/share/u7s/login1/relay",
      socketDir: "/run/user/1000/u7s/login1/u7s-login1-t3",
      socket: "/run/user/1000/u7s/login1/u7s-login1-t3/vxlan-relay.sock",
      pidFile: "/run/user/1000/u7s/login1/u7s-login1-t3/host.pid",
      logFile: "/home/u/.local/state/u7s/login1/u7s-login1-t3/vxlan-relay.log",
    });
  });

  test.each([[{ HOME: "/home/u" }], [{ HOME: "/home/u", XDG_RUNTIME_DIR: "relative" }]])("no absolute XDG_RUNTIME_DIR (%p): an error that says how to turn the relay off", (env) => {
    expect(() => relayPaths(env, "h", "n")).toThrow(/XDG_RUNTIME_DIR is not set/);
    try {
      relayPaths(env, "h", "n");
    } catch (err) {
      expect(String((err as { hint?: string }).hint)).toContain("--vxlan-relay=off");
    }
  });
});

describe("the node spec with the relay", () => {
  test("on (the default): no PORT_FLANNEL published; the relay directory read-only and the socket directory mounted; recorded", async () => {
    const c = await config();
    expect(c.vxlanRelay).toBe(true);
    const spec = nodeSpec(c, { ...INPUT, relay: { binDir: "/d/relay", socketDir: "/r/sock" } });
    expect(spec.ports.map((p) => `${p.host}/${p.protocol}`)).toEqual(["2379/tcp", "6443/tcp", "10250/tcp"]);
    expect(spec.mounts.filter((m) => m.target.startsWith(NODE_RELAY_DIR))).toEqual([
      { source: "/d/relay", target: NODE_RELAY_DIR, readOnly: true },
      { source: "/r/sock", target: NODE_SOCKET_DIR },
    ]);
    const record = settingsRecord(c, "img");
    expect(record[RELAY_ENV]).toBe("on");
    expect(configFromSettings(c, record)?.vxlanRelay).toBe(true);
  });

  test("off: PORT_FLANNEL published as upstream does, no relay mounts, nothing recorded (a node made before the relay is unchanged)", async () => {
    const c = await config({ U7S_VXLAN_RELAY: "off" });
    const spec = nodeSpec(c, { ...INPUT, relay: { binDir: "/d/relay", socketDir: "/r/sock" } });
    expect(spec.ports).toContainEqual({ host: 8472, container: 8472, protocol: "udp" });
    expect(spec.mounts.some((m) => m.target.startsWith(NODE_RELAY_DIR))).toBe(false);
    const record = settingsRecord(c, "img");
    expect(RELAY_ENV in record).toBe(false);
    expect(configFromSettings(c, record)?.vxlanRelay).toBe(false);
    expect(settingsDiff(record, settingsRecord(await config(), "img"))).toEqual([`${RELAY_ENV}: (unset) -> on`]);
  });

  test.each(["yes", "ON", "1", ""])("U7S_VXLAN_RELAY=%p: on unless set, else only on or off", async (v) => {
    if (v === "") return expect((await config({ U7S_VXLAN_RELAY: v })).vxlanRelay).toBe(true);
    await expect(config({ U7S_VXLAN_RELAY: v })).rejects.toThrow(`U7S_VXLAN_RELAY=${JSON.stringify(v)}: not a relay mode (valid: on, off)`);
  });
});

describe("prepareRelayDirs", () => {
  test("a 0700 socket directory, a copy of the binary and the unit; copied again only when the binary changed", () => {
    tmp = mkdtempSync(join(tmpdir(), "u7s-relay-"));
    const paths = relayPaths({ HOME: tmp, XDG_RUNTIME_DIR: join(tmp, "run") }, "h", "n");
    const bin = join(tmp, "u7s-bin");
    writeFileSync(bin, "binary-1");
    prepareRelayDirs(paths, bin);
    expect(statSync(paths.socketDir).mode & 0o777).toBe(0o700);
    expect(readFileSync(join(paths.binDir, "u7s"), "utf8")).toBe("binary-1");
    expect(statSync(join(paths.binDir, "u7s")).mode & 0o777).toBe(0o755);
    expect(readFileSync(join(paths.binDir, RELAY_UNIT), "utf8")).toBe(RELAY_UNIT_TEXT);
    expect(statSync(join(paths.binDir, "run")).isDirectory()).toBe(true);
    const ino = statSync(join(paths.binDir, "u7s")).ino;
    prepareRelayDirs(paths, bin);
    expect(statSync(join(paths.binDir, "u7s")).ino).toBe(ino);
    writeFileSync(bin, "binary-two");
    prepareRelayDirs(paths, bin);
    expect(readFileSync(join(paths.binDir, "u7s"), "utf8")).toBe("binary-two");
  });
});

describe("hostRelayPid", () => {
  test("only a live `u7s vxlan-relay host` process named in the pid file counts", () => {
    tmp = mkdtempSync(join(tmpdir(), "u7s-relay-"));
    const paths = relayPaths({ HOME: tmp, XDG_RUNTIME_DIR: tmp }, "h", "n");
    expect(hostRelayPid(paths)).toBeUndefined();
    prepareRelayDirs(paths, process.execPath);
    writeFileSync(paths.pidFile, `${process.pid}\n`); // this test runner: alive, but not the relay
    expect(hostRelayPid(paths)).toBeUndefined();
    writeFileSync(paths.pidFile, "1\n");
    expect(hostRelayPid(paths)).toBeUndefined();
    writeFileSync(paths.pidFile, "junk");
    expect(hostRelayPid(paths)).toBeUndefined();
  });
});

describe("isRelayMeta", () => {
  test.each([
    [{ hostIp: "10.0.0.1", flannelPort: 8472, nodeName: "n" }, true],
    [{ hostIp: "10.0.0.1", flannelPort: "8472", nodeName: "n" }, false],
    [{ flannelPort: 8472, nodeName: "n" }, false],
    [{ hostIp: "10.0.0.1", flannelPort: 8472 }, false],
    [null, false],
    ["x", false],
  ])("%p: %p", (meta, want) => {
    expect(isRelayMeta(meta)).toBe(want);
  });
});

describe("supervision by systemd --user", () => {
  test("systemd-run starts the host side as a transient unit per node, restarted on failure, logging to the log file, with the engine's environment", async () => {
    const { systemdRunArgv, hostRelayUnit, hostRelayArgs } = await import("../../../lib/relay/host.ts");
    const c = await config({ U7S_TENANT: "3" });
    const paths = relayPaths(ENV, "host-a", c.nodeName);
    const argv = systemdRunArgv(paths, c, { ...ENV, PATH: "/usr/bin", DOCKER_HOST: "unix:///run/user/1000/docker.sock", SECRET: "x", XDG_CONFIG_HOME: "" }, "/opt/u7s");
    expect(hostRelayUnit(c.nodeName)).toBe("u7s-vxlan-relay-u7s-host-a-t3.service");
    expect(argv).toEqual([
      "systemd-run", "--user", "--quiet", "--collect",
      "--unit=u7s-vxlan-relay-u7s-host-a-t3.service",
      "--property=Restart=on-failure", "--property=RestartSec=1",
      `--property=StandardOutput=append:${paths.logFile}`, `--property=StandardError=append:${paths.logFile}`,
      "--setenv=PATH=/usr/bin", "--setenv=HOME=/home/u", "--setenv=XDG_RUNTIME_DIR=/run/user/1000", "--setenv=DOCKER_HOST=unix:///run/user/1000/docker.sock",
      "/opt/u7s", ...hostRelayArgs(c),
    ]);
    expect(hostRelayArgs(c)).toEqual(["vxlan-relay", "host", "--container-engine", "docker", "--node-name", "u7s-host-a-t3", "--host-ip", "10.0.0.1", "--port-flannel", String(c.portFlannel), "--tenant", "3"]);
  });
});
