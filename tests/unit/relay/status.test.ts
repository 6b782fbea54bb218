// lib/relay/lifecycle.ts relayReport: which VXLAN path `u7s status` says a node uses, and why.
import { describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { resolveNodeConfig } from "../../../lib/config/resolve.ts";
import type { ContainerState, Engine } from "../../../lib/engine/engine.ts";
import { relayReport, staleSocketMount } from "../../../lib/relay/lifecycle.ts";
import { relayPaths } from "../../../lib/relay/host.ts";
import { FakeHost } from "../../fixtures/fakes.ts";

const NOW = Date.parse("2026-12-02T17:00:00Z");
const config = (env: Record<string, string> = {}) =>
  resolveNodeConfig({ flags: {}, env: { CONTAINER_ENGINE: "docker", HOSTNAME: "host-a", HOST_IP: "10.0.0.1", ...env }, host: new FakeHost({ binaries: ["docker"] }) });

function state(relay: boolean, running = true): ContainerState {
  const settings = { image: "img", HOST_IP: "10.0.0.1", NODE_NAME: "u7s-host-a", ...(relay ? { U7S_VXLAN_RELAY: "on" } : {}) };
  return { name: "u7s-host-a", running, status: running ? "running" : "exited", labels: { "io.u7s.settings": JSON.stringify(settings) } } as unknown as ContainerState;
}

/** engineWith answers `cat /run/u7s-vxlan-relay.json` in the node with text (undefined: no such file). */
function engineWith(text: string | undefined): Engine {
  return { exec: async () => (text === undefined ? { exitCode: 1, stdout: "", stderr: "No such file" } : { exitCode: 0, stdout: text, stderr: "" }) } as unknown as Engine;
}

const nodeStatus = (updated: number, peers: Record<string, number>) =>
  JSON.stringify({ pid: 7, since: "", updated: new Date(updated).toISOString(), hostIp: "10.0.0.1", flannelPort: 8472, zone: 3, peers, stats: { egress: { packets: 5, bytes: 1 }, ingress: { packets: 4, bytes: 1 }, dropped: {} } });

describe("relayReport", () => {
  const env = { HOME: "/nonexistent", XDG_RUNTIME_DIR: "/nonexistent/run" };

  test("off: the engine path, saying so", async () => {
    const c = await config({ U7S_VXLAN_RELAY: "off" });
    const r = await relayReport({ config: c, engine: engineWith(undefined), log: undefined as never, env, hostname: "host-a" }, state(false), NOW);
    expect(r).toEqual({ path: "engine", why: "U7S_VXLAN_RELAY=off: the engine publishes PORT_FLANNEL", hostSide: null, hostUnit: null, node: null });
  });

  test("a node made without the relay while it is on: the engine path, with how to switch", async () => {
    const r = await relayReport({ config: await config(), engine: engineWith(undefined), log: undefined as never, env, hostname: "host-a" }, state(false), NOW);
    expect(r.path).toBe("engine");
    expect(r.why).toContain("--recreate");
  });

  test("on, but no host side running and no unit (after a reboot without a systemd user manager): the engine path, why, and that `u7s up` restores it", async () => {
    const r = await relayReport({ config: await config(), engine: engineWith(nodeStatus(NOW, {})), log: undefined as never, env, hostname: "host-a" }, state(true), NOW);
    expect(r.path).toBe("engine");
    expect(r.hostUnit).toBeNull();
    expect(r.why).toBe(
      "the relay's host side is not running (no systemd --user unit starts it at boot: after a reboot, or it was stopped); `u7s up` restores the relay. " +
        "Meanwhile the node's VXLAN leaves through the engine, and none from other hosts arrives (nothing receives on PORT_FLANNEL)",
    );
  });

  test("on, no host side running, but its unit is there: the engine path, naming the unit to look at", async () => {
    const tmp = mkdtempSync(join(tmpdir(), "u7s-status-"));
    try {
      const e = { HOME: tmp };
      const paths = relayPaths(e, "host-a", "u7s-host-a");
      mkdirSync(join(tmp, ".config/systemd/user"), { recursive: true });
      writeFileSync(paths.hostUnitFile, "unit");
      const r = await relayReport({ config: await config(), engine: engineWith(nodeStatus(NOW, {})), log: undefined as never, env: e, hostname: "host-a" }, state(true), NOW);
      expect(r.hostUnit).toBe("u7s-vxlan-relay-host-a-u7s-host-a.service");
      expect(r.why).toContain("its systemd --user unit u7s-vxlan-relay-host-a-u7s-host-a.service should run it: `systemctl --user status u7s-vxlan-relay-host-a-u7s-host-a.service`");
      expect(r.why).toContain("`u7s up` restores the relay");
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  test("on, with a host side (this process stands in) and a fresh node report: the relay path with its peers; a stale report: the engine path", async () => {
    const tmp = mkdtempSync(join(tmpdir(), "u7s-status-"));
    try {
      const e = { HOME: tmp, XDG_RUNTIME_DIR: tmp };
      const paths = relayPaths(e, "host-a", "u7s-host-a");
      mkdirSync(paths.socketDir, { recursive: true });
      // a process whose cmdline holds `vxlan-relay host` stands in for the host side (bash keeps its arguments)
      const fake = Bun.spawn(["bash", "-c", "sleep 30; :", "vxlan-relay", "host", "--node-name", "u7s-host-a"], { stdout: "ignore" });
      // Until the child has exec'd bash, its cmdline is still this test's own (seen on a busy machine).
      while (!readFileSync(`/proc/${fake.pid}/cmdline`, "utf8").includes("vxlan-relay")) await Bun.sleep(5);
      writeFileSync(paths.pidFile, String(fake.pid));
      const base = { config: await config(), log: undefined as never, env: e, hostname: "host-a" };
      const fresh = await relayReport({ ...base, engine: engineWith(nodeStatus(NOW - 1000, { "10.0.0.2": 40001 })) }, state(true), NOW);
      expect({ path: fresh.path, why: fresh.why, pid: fresh.hostSide?.pid }).toEqual({ path: "relay", why: "relaying for 1 peer", pid: fake.pid });
      const none = await relayReport({ ...base, engine: engineWith(nodeStatus(NOW - 1000, {})) }, state(true), NOW);
      expect(none.why).toContain("no peers yet");
      const stale = await relayReport({ ...base, engine: engineWith(nodeStatus(NOW - 60_000, { "10.0.0.2": 40001 })) }, state(true), NOW);
      expect({ path: stale.path, node: stale.node }).toEqual({ path: "engine", node: null });
      expect(stale.why).toContain("node's relay is not running");
      fake.kill();
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});

describe("staleSocketMount", () => {
  test("a node mounting its socket directory from an earlier u7s's place (the runtime directory) is named, with `u7s up --recreate`; the current place or a symlink to it is fine", () => {
    const tmp = mkdtempSync(join(tmpdir(), "u7s-stale-"));
    try {
      const dir = join(tmp, "state/relay");
      mkdirSync(dir, { recursive: true });
      symlinkSync(join(tmp, "state"), join(tmp, "link"));
      const node = (source: string) => ({ name: "u7s-host-a", mounts: [{ type: "bind", source, destination: "/usr/local/lib/u7s/run" }] });
      expect(staleSocketMount(node(dir), dir)).toBeUndefined();
      expect(staleSocketMount(node(join(tmp, "link/relay")), dir)).toBeUndefined();
      expect(staleSocketMount({ name: "n", mounts: [] }, dir)).toBeUndefined();
      expect(staleSocketMount(node("/run/user/1000/u7s/host-a/u7s-host-a"), dir)).toBe(
        `node u7s-host-a mounts the VXLAN relay's socket directory from /run/user/1000/u7s/host-a/u7s-host-a (an earlier u7s's place, which a reboot removes, so the node would not boot): run \`u7s up --recreate\` to move it to ${dir}`,
      );
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});
