// The host side of the VXLAN relay: `u7s vxlan-relay host`, run as the user on the host (in the
// host's network namespace). It creates the host socket bound HOST_IP:PORT_FLANNEL (instead of the
// engine publishing that port) and serves it to the node's relay over a unix socket of mode 0600 in
// the user's runtime directory (unix(7): connecting needs write permission on the socket file; the
// server also checks the peer's uid with SO_PEERCRED). It keeps its copy of the socket, so a node
// relay started again (node or engine restart) gets the same socket; datagrams wait in its receive
// buffer meanwhile. It ends when the node is gone (or `u7s down` stops it).
import { spawn } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import relayUnit from "../../assets/u7s-vxlan-relay.service" with { type: "text" };
import type { NodeConfig } from "../config/resolve.ts";
import { U7sError } from "../errors.ts";
import type { Runner } from "../exec.ts";
import type { XdgEnv } from "../state/paths.ts";
import { hostDataPaths, statePaths } from "../state/paths.ts";

/** NODE_RELAY_DIR is where the node sees the relay's directory (read-only): the u7s binary and the unit. */
export const NODE_RELAY_DIR = "/usr/local/lib/u7s";
/** NODE_SOCKET_DIR is where the node sees the host's socket directory (the runtime dir's, mounted on NODE_RELAY_DIR/run). */
export const NODE_SOCKET_DIR = `${NODE_RELAY_DIR}/run`;
/** SOCKET_NAME is the unix socket's file name in the socket directory. */
export const SOCKET_NAME = "vxlan-relay.sock";
/** RELAY_UNIT is the node's systemd unit for the node side (assets/u7s-vxlan-relay.service). */
export const RELAY_UNIT = "u7s-vxlan-relay.service";
/** RELAY_UNIT_TEXT is that unit's text. */
export const RELAY_UNIT_TEXT: string = relayUnit;

/** RelayPaths are the host's files of one node's relay. */
export interface RelayPaths {
  /** binDir: what the node mounts read-only at NODE_RELAY_DIR ($XDG_DATA_HOME/u7s/HOST/relay): a copy of u7s and the unit. */
  binDir: string;
  /** socketDir: $XDG_RUNTIME_DIR/u7s/HOST/NODE, mode 0700, mounted at NODE_SOCKET_DIR. */
  socketDir: string;
  /** socket: the unix socket (mode 0600) the host side serves the host socket on. */
  socket: string;
  /** pidFile: the host side's pid (in socketDir). */
  pidFile: string;
  /** logFile: the host side's log ($XDG_STATE_HOME/u7s/HOST/NODE/vxlan-relay.log). */
  logFile: string;
}

/** relayPaths places a node's relay files: per host and node, like every other state of u7s. */
export function relayPaths(env: XdgEnv, host: string, nodeName: string): RelayPaths {
  const runtime = env.XDG_RUNTIME_DIR;
  if (runtime === undefined || !runtime.startsWith("/")) {
    throw new U7sError("XDG_RUNTIME_DIR is not set: the VXLAN relay keeps its unix socket there", {
      hint: "log in through systemd-logind (or set XDG_RUNTIME_DIR to /run/user/$(id -u)), or use the engine's path: --vxlan-relay=off",
    });
  }
  const socketDir = join(runtime, "u7s", host, nodeName);
  return {
    binDir: join(hostDataPaths(env, host).dataDir, "relay"),
    socketDir,
    socket: join(socketDir, SOCKET_NAME),
    pidFile: join(socketDir, "host.pid"),
    logFile: join(statePaths(env, host, nodeName).stateDir, "vxlan-relay.log"),
  };
}

/**
 * prepareRelayDirs makes the directories the node mounts (before it is created): the socket
 * directory (0700) and the read-only directory with a copy of this u7s binary and the node unit.
 * The copy is refreshed when this binary differs (size or modification time), by rename, so a
 * running node keeps the binary it started with.
 */
export function prepareRelayDirs(paths: RelayPaths, binary: string = process.execPath): void {
  mkdirSync(paths.socketDir, { recursive: true, mode: 0o700 });
  chmodSync(paths.socketDir, 0o700);
  mkdirSync(join(paths.binDir, "run"), { recursive: true, mode: 0o755 });
  const target = join(paths.binDir, "u7s");
  const src = statSync(binary);
  const have = existsSync(target) ? statSync(target) : undefined;
  if (!have || have.size !== src.size || Math.floor(have.mtimeMs) !== Math.floor(src.mtimeMs)) {
    const tmp = `${target}.${process.pid}.tmp`;
    copyFileSync(binary, tmp);
    chmodSync(tmp, 0o755);
    utimesSync(tmp, src.atime, src.mtime);
    renameSync(tmp, target);
  }
  const unit = join(paths.binDir, RELAY_UNIT);
  if (!existsSync(unit) || readFileSync(unit, "utf8") !== RELAY_UNIT_TEXT) {
    writeFileSync(`${unit}.tmp`, RELAY_UNIT_TEXT, { mode: 0o644 });
    renameSync(`${unit}.tmp`, unit);
  }
}

/** RelayMeta is what the host side hands the node's relay with the socket. */
export interface RelayMeta {
  hostIp: string;
  flannelPort: number;
  nodeName: string;
}

/** isRelayMeta checks the meta a node relay received. */
export function isRelayMeta(m: unknown): m is RelayMeta {
  const o = m as Partial<RelayMeta> | null;
  return typeof o === "object" && o !== null && typeof o.hostIp === "string" && typeof o.flannelPort === "number" && typeof o.nodeName === "string";
}

/** hostRelayPid returns the pid of this node's running host side, or undefined (no pid file, a dead or another process). */
export function hostRelayPid(paths: RelayPaths): number | undefined {
  let pid: number;
  try {
    pid = Number(readFileSync(paths.pidFile, "utf8").trim());
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 1) return undefined;
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    // ours: `u7s vxlan-relay host` (a pid reused by another program is not)
    return cmdline.includes("vxlan-relay") && cmdline.includes("host") ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** HostRelayStart says how the host side was started: found running, as a systemd --user unit, or as a detached process. */
export type HostRelayStart = { how: "running" | "systemd" | "detached"; pid: number };

/** hostRelayArgs are the host side's arguments: the node's settings as flags (it resolves them as `up` did). */
export function hostRelayArgs(config: NodeConfig): string[] {
  return [
    "vxlan-relay", "host",
    "--container-engine", config.containerEngine ?? "",
    "--node-name", config.nodeName,
    "--host-ip", config.hostIp,
    "--port-flannel", String(config.portFlannel),
    "--tenant", String(config.tenant),
  ];
}

/** hostRelayUnit is the host side's systemd --user unit name (node names are DNS labels: valid in unit names). */
export function hostRelayUnit(nodeName: string): string {
  return `u7s-vxlan-relay-${nodeName}.service`;
}

/** PASSED_ENV: what the host side needs of the environment under systemd (the engine CLI and u7s's own directories). */
const PASSED_ENV = ["PATH", "HOME", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME", "DOCKER_HOST", "CONTAINER_HOST", "CONTAINERD_ADDRESS", "CONTAINER_ENGINE_TYPE"];

/**
 * systemdRunArgv starts the host side as a transient systemd --user service (systemd-run(1)) that
 * systemd restarts when it fails (systemd.service(5) Restart=on-failure; it exits 0 when its node is
 * gone or it is stopped), logging to paths.logFile.
 */
export function systemdRunArgv(paths: RelayPaths, config: NodeConfig, env: XdgEnv, binary: string): string[] {
  const setenv = PASSED_ENV.filter((k) => env[k] !== undefined && env[k] !== "").map((k) => `--setenv=${k}=${env[k]}`);
  return [
    "systemd-run", "--user", "--quiet", "--collect",
    `--unit=${hostRelayUnit(config.nodeName)}`,
    "--property=Restart=on-failure", "--property=RestartSec=1",
    `--property=StandardOutput=append:${paths.logFile}`, `--property=StandardError=append:${paths.logFile}`,
    ...setenv,
    binary, ...hostRelayArgs(config),
  ];
}

/** userSystemd tells whether the user has a systemd manager to supervise the host side (`systemctl --user is-system-running`). */
async function userSystemd(run: Runner): Promise<boolean> {
  try {
    const r = await run(["systemctl", "--user", "is-system-running"], { timeoutMs: 5_000 });
    return ["running", "degraded"].includes(r.stdout.trim());
  } catch {
    return false; // no systemctl
  }
}

/**
 * startHostRelay starts this node's host side unless it runs: `u7s vxlan-relay host` supervised by
 * systemd --user where the user has one, else as a detached process of its own session (either way it
 * outlives `u7s up`, the engine and its restarts), logging to paths.logFile. It waits until the socket
 * is served.
 */
export async function startHostRelay(paths: RelayPaths, config: NodeConfig, env: XdgEnv, run: Runner, binary: string = process.execPath): Promise<HostRelayStart> {
  const running = hostRelayPid(paths);
  if (running !== undefined && existsSync(paths.socket)) return { how: "running", pid: running };
  if (running !== undefined) await stopHostRelay(paths);
  mkdirSync(dirname(paths.logFile), { recursive: true, mode: 0o700 });
  let how: HostRelayStart["how"] = "detached";
  let child: ReturnType<typeof spawn> | undefined;
  if (await userSystemd(run)) {
    // a unit of that name left from an earlier run (failed, not collected) would refuse the new one
    await run(["systemctl", "--user", "reset-failed", hostRelayUnit(config.nodeName)]).catch(() => undefined);
    const r = await run(systemdRunArgv(paths, config, env, binary));
    if (r.exitCode === 0) how = "systemd";
  }
  if (how === "detached") {
    const log = openSync(paths.logFile, "a", 0o600);
    child = spawn(binary, hostRelayArgs(config), { detached: true, stdio: ["ignore", log, log], env: { ...process.env, ...env } as NodeJS.ProcessEnv });
    child.unref();
    if (child.pid === undefined) throw new U7sError("cannot start the VXLAN relay's host side", { hint: `see ${paths.logFile}` });
  }
  for (const deadline = Date.now() + 10_000; Date.now() < deadline; await Bun.sleep(50)) {
    const pid = hostRelayPid(paths);
    if (existsSync(paths.socket) && pid !== undefined && (child === undefined || pid === child.pid)) return { how, pid };
    if (child !== undefined && child.exitCode !== null) break;
  }
  const tail = existsSync(paths.logFile) ? readFileSync(paths.logFile, "utf8").trim().split("\n").slice(-3).join("\n") : "";
  throw new U7sError(`the VXLAN relay's host side did not start (it serves ${paths.socket})`, {
    detail: tail || undefined,
    hint: `see ${paths.logFile}; or use the engine's path: --vxlan-relay=off`,
  });
}

/** stopHostRelay ends this node's host side (SIGTERM, then SIGKILL after 3 s) and removes its files; false when none ran. */
export async function stopHostRelay(paths: RelayPaths): Promise<boolean> {
  const pid = hostRelayPid(paths);
  if (pid !== undefined) {
    try {
      process.kill(pid, "SIGTERM");
    } catch {
      // gone meanwhile
    }
    for (const deadline = Date.now() + 3_000; Date.now() < deadline && hostRelayPid(paths) === pid; ) await Bun.sleep(50);
    if (hostRelayPid(paths) === pid) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone meanwhile
      }
    }
  }
  rmSync(paths.socket, { force: true });
  rmSync(paths.pidFile, { force: true });
  return pid !== undefined;
}

/** HOST_RCVBUF: the host socket's receive buffer, asked for so datagrams wait while the node relay restarts (capped by net.core.rmem_max). */
const HOST_RCVBUF = 4 << 20;
/** NODE_CHECK_MS: how often the host side looks whether its node still exists. */
export const NODE_CHECK_MS = 10_000;

/** HostRelayDeps are what the host side needs: whether the node still exists, a log, and when to stop. */
export interface HostRelayDeps {
  nodeExists: () => Promise<boolean>;
  log: (line: string) => void;
  signal: AbortSignal;
}

/**
 * serveHostRelay is `u7s vxlan-relay host`: binds HOST_IP:PORT_FLANNEL, serves the socket to the node's
 * relay (peers of this uid only), and runs until the signal aborts or the node is gone.
 */
export async function serveHostRelay(paths: RelayPaths, config: NodeConfig, deps: HostRelayDeps): Promise<void> {
  const { openUdp, closeFd } = await import("./udp.ts");
  const { serveSockets } = await import("./fdpass.ts");
  mkdirSync(paths.socketDir, { recursive: true, mode: 0o700 });
  const fd = openUdp({ ip: config.hostIp, port: config.portFlannel }, { rcvbuf: HOST_RCVBUF });
  const meta: RelayMeta = { hostIp: config.hostIp, flannelPort: config.portFlannel, nodeName: config.nodeName };
  rmSync(paths.socket, { force: true });
  const server = serveSockets(
    paths.socket,
    (peer) => {
      deps.log(`handing the host socket ${config.hostIp}:${config.portFlannel}/udp to pid ${peer.pid}`);
      return { fds: [fd], meta };
    },
    { log: { warn: (t: string) => deps.log(t) } },
  );
  writeFileSync(paths.pidFile, `${process.pid}\n`, { mode: 0o600 });
  deps.log(`serving ${config.hostIp}:${config.portFlannel}/udp for node ${config.nodeName} on ${paths.socket}`);
  try {
    while (!deps.signal.aborted) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, NODE_CHECK_MS);
        deps.signal.addEventListener("abort", () => (clearTimeout(t), resolve()), { once: true });
      });
      if (!deps.signal.aborted && !(await deps.nodeExists().catch(() => true))) {
        deps.log(`node ${config.nodeName} is gone: stopping`);
        break;
      }
    }
  } finally {
    server.close();
    closeFd(fd);
    if (readFileSync(paths.pidFile, "utf8").trim() === String(process.pid)) rmSync(paths.pidFile, { force: true });
    rmSync(paths.socket, { force: true });
  }
}

/** NODE_UNIT_PATH is the unit inside the node (in the read-only relay directory). */
export const NODE_UNIT_PATH = `${NODE_RELAY_DIR}/${RELAY_UNIT}`;

/** enableNodeUnitArgv links, enables and starts the node's relay unit (systemctl(1): enable --now takes a unit file's path outside the search path). */
export const ENABLE_NODE_UNIT: readonly string[] = ["systemctl", "enable", "--now", NODE_UNIT_PATH];
