// lib/relay/boot.ts and its use in lib/relay/host.ts / lifecycle.ts: the host side's persistent systemd
// --user unit (it starts at boot), written and enabled by `up`, removed by `down`; never a unit u7s did
// not write. The test hosts have no user systemd, so this is where the unit path is checked: unit text
// and the systemctl argv, against a runner that stands in for systemctl.
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { resolveNodeConfig } from "../../../lib/config/resolve.ts";
import type { Runner } from "../../../lib/exec.ts";
import { hostUnitArgv, hostUnitName, hostUnitText, removeHostUnit, UNIT_MARKER, unitQuote, writeHostUnit } from "../../../lib/relay/boot.ts";
import { hostRelayArgs, relayPaths, startHostRelay } from "../../../lib/relay/host.ts";
import { downRelay } from "../../../lib/relay/lifecycle.ts";
import { FakeHost } from "../../fixtures/fakes.ts";

const config = (env: Record<string, string> = {}) =>
  resolveNodeConfig({ flags: {}, env: { CONTAINER_ENGINE: "docker", HOSTNAME: "host-a", HOST_IP: "10.0.0.1", ...env }, host: new FakeHost({ binaries: ["docker"] }) });

let tmp: string | undefined;
const spawned: { kill(): void }[] = [];
afterEach(() => {
  while (spawned.length > 0) {
    try {
      spawned.pop()!.kill();
    } catch {
      // down stopped it already
    }
  }
  if (tmp) rmSync(tmp, { recursive: true, force: true });
  tmp = undefined;
});

describe("the host side's unit", () => {
  test("text: u7s's marker, only on its own host, no start limit, the node's arguments on the persistent binary, restarted on failure, the log, wanted at boot", async () => {
    const c = await config({ U7S_TENANT: "3" });
    const paths = relayPaths({ HOME: "/home/u" }, "host-a", c.nodeName);
    const text = hostUnitText({
      host: "host-a",
      nodeName: c.nodeName,
      binary: "/home/u/.local/share/u7s/host-a/relay/u7s",
      args: hostRelayArgs(c),
      logFile: paths.logFile,
      env: { PATH: "/usr/bin:/bin", HOME: "/home/u", DOCKER_HOST: "unix:///run/user/1000/docker.sock", SECRET: "x", XDG_CONFIG_HOME: "" },
    });
    expect(text).toBe(
      [
        UNIT_MARKER,
        "[Unit]",
        "Description=u7s: VXLAN relay host side of node u7s-host-a-t3",
        "ConditionHost=host-a",
        "StartLimitIntervalSec=0",
        "",
        "[Service]",
        'Environment="PATH=/usr/bin:/bin"',
        'Environment="HOME=/home/u"',
        'Environment="DOCKER_HOST=unix:///run/user/1000/docker.sock"',
        `ExecStart="/home/u/.local/share/u7s/host-a/relay/u7s" "vxlan-relay" "host" "--container-engine" "docker" "--node-name" "u7s-host-a-t3" "--host-ip" "10.0.0.1" "--port-flannel" "${c.portFlannel}" "--tenant" "3"`,
        "Restart=on-failure",
        "RestartSec=2",
        "StandardOutput=append:/home/u/.local/state/u7s/host-a/u7s-host-a-t3/vxlan-relay.log",
        "StandardError=append:/home/u/.local/state/u7s/host-a/u7s-host-a-t3/vxlan-relay.log",
        "",
        "[Install]",
        "WantedBy=default.target",
        "",
      ].join("\n"),
    );
  });

  test("words are quoted for systemd: backslash, quote, % specifiers, and $ in ExecStart", () => {
    expect(unitQuote('a "b" \\c 100%')).toBe('"a \\"b\\" \\\\c 100%%"');
    expect(unitQuote("$HOME", true)).toBe('"$$HOME"');
    expect(unitQuote("$HOME")).toBe('"$HOME"');
  });

  test("the unit's name is per host and node; systemctl --user argv", () => {
    expect(hostUnitName("login1", "u7s-login1-t3")).toBe("u7s-vxlan-relay-login1-u7s-login1-t3.service");
    expect(hostUnitArgv.enable("x.service")).toEqual(["systemctl", "--user", "enable", "x.service"]);
    expect(hostUnitArgv.start("x.service")).toEqual(["systemctl", "--user", "start", "x.service"]);
    expect(hostUnitArgv.disableNow("x.service")).toEqual(["systemctl", "--user", "disable", "--now", "x.service"]);
    expect(hostUnitArgv.daemonReload).toEqual(["systemctl", "--user", "daemon-reload"]);
  });

  test("a unit file of that name u7s did not write is neither replaced nor removed", () => {
    tmp = mkdtempSync(join(tmpdir(), "u7s-boot-"));
    const file = join(tmp, "systemd/user/u.service");
    expect(removeHostUnit(file)).toBe("none");
    expect(writeHostUnit(file, `${UNIT_MARKER}\nA\n`)).toBe("written");
    expect(writeHostUnit(file, `${UNIT_MARKER}\nA\n`)).toBe("same");
    expect(writeHostUnit(file, `${UNIT_MARKER}\nB\n`)).toBe("written");
    expect(readFileSync(file, "utf8")).toBe(`${UNIT_MARKER}\nB\n`);
    expect(removeHostUnit(file)).toBe("removed");
    expect(existsSync(file)).toBe(false);
    writeFileSync(file, "[Service]\nExecStart=/bin/mine\n");
    expect(writeHostUnit(file, `${UNIT_MARKER}\nA\n`)).toBe("foreign");
    expect(removeHostUnit(file)).toBe("foreign");
    expect(readFileSync(file, "utf8")).toBe("[Service]\nExecStart=/bin/mine\n");
  });
});

/** FakeSystemctl stands in for `systemctl --user`: it records argv; `start` runs a stand-in host side (a process named like one, its pid file and socket file). */
function fakeSystemctl(userManager: boolean, paths: ReturnType<typeof relayPaths>): { run: Runner; calls: string[][] } {
  const calls: string[][] = [];
  const run: Runner = async (argv) => {
    calls.push([...argv]);
    if (argv[2] === "is-system-running") return { exitCode: userManager ? 0 : 1, stdout: userManager ? "running\n" : "offline\n", stderr: "" };
    if (argv[2] === "start") {
      const p = Bun.spawn(["bash", "-c", "sleep 30; :", "vxlan-relay", "host", "--node-name", paths.nodeName], { stdout: "ignore" });
      spawned.push(p);
      while (!readFileSync(`/proc/${p.pid}/cmdline`, "utf8").includes("vxlan-relay")) await Bun.sleep(5);
      mkdirSync(paths.socketDir, { recursive: true });
      writeFileSync(paths.pidFile, String(p.pid));
      writeFileSync(paths.socket, "");
    }
    return { exitCode: 0, stdout: "", stderr: "" };
  };
  return { run, calls };
}

describe("up and down with a systemd user manager", () => {
  test("up writes the unit, reloads, enables it (WantedBy=default.target: it starts at boot) and starts it; down disables it and removes the file", async () => {
    tmp = mkdtempSync(join(tmpdir(), "u7s-boot-"));
    const env = { HOME: tmp };
    const c = await config();
    const paths = relayPaths(env, "host-a", c.nodeName);
    const { run, calls } = fakeSystemctl(true, paths);
    const started = await startHostRelay(paths, c, env, run, "/bin/false");
    expect({ how: started.how, boot: started.boot }).toEqual({ how: "systemd", boot: "unit" });
    const unit = "u7s-vxlan-relay-host-a-u7s-host-a.service";
    expect(calls).toEqual([
      ["systemctl", "--user", "is-system-running"],
      ["systemctl", "--user", "daemon-reload"],
      ["systemctl", "--user", "enable", unit],
      ["systemctl", "--user", "reset-failed", unit],
      ["systemctl", "--user", "start", unit],
    ]);
    const text = readFileSync(join(tmp, ".config/systemd/user", unit), "utf8");
    expect(text).toContain(`ExecStart="${join(tmp, ".local/share/u7s/host-a/relay/u7s")}" "vxlan-relay" "host"`);
    expect(text).toContain("WantedBy=default.target");
    // a second up: the host side runs, the unit is unchanged: enabled again (idempotent), nothing started
    calls.length = 0;
    expect((await startHostRelay(paths, c, env, run, "/bin/false")).how).toBe("running");
    expect(calls).toEqual([["systemctl", "--user", "is-system-running"], ["systemctl", "--user", "enable", unit]]);
    calls.length = 0;
    const log = { info: (_: string) => {}, warn: (_: string) => {} } as never;
    await downRelay({ config: c, log, env, hostname: "host-a", runner: run });
    expect(calls).toEqual([["systemctl", "--user", "disable", "--now", unit], ["systemctl", "--user", "daemon-reload"]]);
    expect(existsSync(paths.hostUnitFile)).toBe(false);
  });

  test("a unit of that name that u7s did not write: up leaves it and runs a detached host side, down keeps it", async () => {
    tmp = mkdtempSync(join(tmpdir(), "u7s-boot-"));
    const env = { HOME: tmp };
    const c = await config();
    const paths = relayPaths(env, "host-a", c.nodeName);
    mkdirSync(join(tmp, ".config/systemd/user"), { recursive: true });
    writeFileSync(paths.hostUnitFile, "[Service]\nExecStart=/bin/mine\n");
    const { run, calls } = fakeSystemctl(true, paths);
    // the detached stand-in: a script named like the host side that writes its pid file and socket
    const script = join(tmp, "fake-u7s");
    writeFileSync(script, `#!/bin/bash\nmkdir -p '${paths.socketDir}'; echo $$ > '${paths.pidFile}'; : > '${paths.socket}'; exec bash -c 'sleep 30; :' u7s "$@"\n`, { mode: 0o755 });
    const started = await startHostRelay(paths, c, env, run, script).catch((e) => e);
    // its cmdline holds `vxlan-relay host ... --node-name NODE`: recognised as the host side
    expect(started).toMatchObject({ how: "detached", boot: "foreign-unit" });
    spawned.push({ kill: () => process.kill(started.pid) });
    expect(calls.map((a) => a[2])).toEqual(["is-system-running"]);
    const log = { info: (_: string) => {}, warn: (t: string) => warned.push(t) } as never;
    const warned: string[] = [];
    await downRelay({ config: c, log, env, hostname: "host-a", runner: run });
    expect(readFileSync(paths.hostUnitFile, "utf8")).toBe("[Service]\nExecStart=/bin/mine\n");
    expect(warned).toEqual([`kept ${paths.hostUnitFile}: u7s did not write it`]);
  });

  test("no systemd user manager: a detached host side, no unit written, and `up` says in one line it will not come back after a reboot", async () => {
    tmp = mkdtempSync(join(tmpdir(), "u7s-boot-"));
    const env = { HOME: tmp };
    const c = await config();
    const paths = relayPaths(env, "host-a", c.nodeName);
    const { run, calls } = fakeSystemctl(false, paths);
    const script = join(tmp, "fake-u7s");
    writeFileSync(script, `#!/bin/bash\nmkdir -p '${paths.socketDir}'; echo $$ > '${paths.pidFile}'; : > '${paths.socket}'; exec bash -c 'sleep 30; :' u7s "$@"\n`, { mode: 0o755 });
    const started = await startHostRelay(paths, c, env, run, script);
    spawned.push({ kill: () => process.kill(started.pid) });
    expect({ how: started.how, boot: started.boot }).toEqual({ how: "detached", boot: "no-user-systemd" });
    expect(calls).toEqual([["systemctl", "--user", "is-system-running"]]);
    expect(existsSync(paths.hostUnitFile)).toBe(false);
  });
});
