// The host side of the VXLAN relay: `u7s vxlan-relay host`, run as the user on the host (in the
// host's network namespace). It creates the host socket bound HOST_IP:PORT_FLANNEL (instead of the
// engine publishing that port) and serves it to the node's relay over a unix socket of mode 0600 in
// the node's state directory, which the node mounts and which outlives a reboot (unix(7): connecting
// needs write permission on the socket file; the server also checks the peer's uid with SO_PEERCRED).
// It keeps its copy of the socket, so a node relay started again (node or engine restart) gets the
// same socket; datagrams wait in its receive buffer meanwhile. It ends when the node is gone (or
// `u7s down` stops it); a systemd --user unit (boot.ts) starts it at boot where the user has a manager.
import { spawn } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import relayUnit from "../../assets/u7s-vxlan-relay.service" with { type: "text" };
import type { NodeConfig } from "../config/resolve.ts";
import { U7sError } from "../errors.ts";
import type { Runner } from "../exec.ts";
import type { XdgEnv } from "../state/paths.ts";
import { hostDataPaths, statePaths, xdgConfigHome } from "../state/paths.ts";
import { hostUnitArgv, hostUnitFile, hostUnitName, hostUnitText, removeHostUnit, UNIT_MARKER, writeHostUnit } from "./boot.ts";

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
  /** nodeName: the node these files are of (its host side's command line names it). */
  nodeName: string;
  /** host: the machine's real host name. */
  host: string;
  /** hostUnit: the host side's systemd --user unit (lib/relay/boot.ts), and hostUnitFile, where `up` writes it. */
  hostUnit: string;
  hostUnitFile: string;
  /** binDir: what the node mounts read-only at NODE_RELAY_DIR ($XDG_DATA_HOME/u7s/HOST/relay): a copy of u7s and the unit. */
  binDir: string;
  /**
   * socketDir: $XDG_STATE_HOME/u7s/HOST/NODE/relay, mode 0700, mounted at NODE_SOCKET_DIR. Not in
   * $XDG_RUNTIME_DIR: a reboot empties that, and an engine refuses to start a node whose bind
   * source is missing (Podman), so the node would not come back at boot.
   */
  socketDir: string;
  /** socket: the unix socket (mode 0600) the host side serves the host socket on. */
  socket: string;
  /** pidFile: the host side's pid (in socketDir; it outlives a reboot, so hostRelayPid checks the process's command line). */
  pidFile: string;
  /** logFile: the host side's log ($XDG_STATE_HOME/u7s/HOST/NODE/vxlan-relay.log). */
  logFile: string;
}

/** relayPaths places a node's relay files: per host and node, like every other state of u7s, all of them kept across a reboot. */
export function relayPaths(env: XdgEnv, host: string, nodeName: string): RelayPaths {
  const { stateDir } = statePaths(env, host, nodeName);
  const socketDir = join(stateDir, "relay");
  return {
    nodeName,
    host,
    hostUnit: hostUnitName(host, nodeName),
    hostUnitFile: hostUnitFile(xdgConfigHome(env), host, nodeName),
    binDir: join(hostDataPaths(env, host).dataDir, "relay"),
    socketDir,
    socket: join(socketDir, SOCKET_NAME),
    pidFile: join(socketDir, "host.pid"),
    logFile: join(stateDir, "vxlan-relay.log"),
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

/**
 * hostRelayPid returns the pid of this node's running host side, or undefined (no pid file, a dead or
 * another process: after a reboot the pid file is old, and its pid may be another node's host side).
 */
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
    // ours: `u7s vxlan-relay host --node-name NODE` (a pid reused by another program or node is not)
    const node = cmdline.indexOf("--node-name");
    const sameNode = node >= 0 && cmdline[node + 1] === paths.nodeName;
    return cmdline.includes("vxlan-relay") && cmdline.includes("host") && sameNode ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * HostRelayStart says how the host side runs (found running, started by its systemd --user unit, or as a
 * detached process) and whether it comes back at boot by itself: "unit" (its unit is enabled), or why not.
 */
export type HostRelayStart = { how: "running" | "systemd" | "detached"; pid: number; boot: "unit" | "no-user-systemd" | "foreign-unit" | "not-asked" };

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

/** userSystemd tells whether the user has a systemd manager to supervise the host side (`systemctl --user is-system-running`). */
export async function userSystemd(run: Runner): Promise<boolean> {
  try {
    const r = await run(["systemctl", "--user", "is-system-running"], { timeoutMs: 5_000 });
    return ["running", "degraded", "starting"].includes(r.stdout.trim());
  } catch {
    return false; // no systemctl
  }
}

/**
 * installHostUnit writes and enables the host side's persistent unit (it starts at boot), true when it
 * is enabled; false when a unit of its name is not u7s's (left alone) or systemctl refuses.
 */
async function installHostUnit(paths: RelayPaths, config: NodeConfig, env: XdgEnv, run: Runner): Promise<boolean> {
  const text = hostUnitText({ host: paths.host, nodeName: config.nodeName, binary: join(paths.binDir, "u7s"), args: hostRelayArgs(config), logFile: paths.logFile, env });
  const wrote = writeHostUnit(paths.hostUnitFile, text);
  if (wrote === "foreign") return false;
  if (wrote === "written") await run(hostUnitArgv.daemonReload);
  return (await run(hostUnitArgv.enable(paths.hostUnit))).exitCode === 0;
}

/**
 * startHostRelay starts this node's host side unless it runs: where the user has a systemd manager, from
 * a persistent unit that `up` writes and enables (it comes back at boot, restarted on failure), else as a
 * detached process of its own session (it outlives `u7s up`, the engine and its restarts, not a reboot).
 * It logs to paths.logFile, and the call waits until the socket is served. atBoot false (a batch job's
 * node, gone with the job): always a detached process, no unit written ("not-asked").
 */
export async function startHostRelay(paths: RelayPaths, config: NodeConfig, env: XdgEnv, run: Runner, binary: string = process.execPath, atBoot = true): Promise<HostRelayStart> {
  mkdirSync(dirname(paths.logFile), { recursive: true, mode: 0o700 });
  let boot: HostRelayStart["boot"] = atBoot ? "no-user-systemd" : "not-asked";
  if (atBoot && (await userSystemd(run))) boot = (await installHostUnit(paths, config, env, run)) ? "unit" : "foreign-unit";
  const running = hostRelayPid(paths);
  if (running !== undefined && existsSync(paths.socket)) return { how: "running", pid: running, boot };
  if (running !== undefined) await stopHostRelay(paths);
  let how: HostRelayStart["how"] = "detached";
  let child: ReturnType<typeof spawn> | undefined;
  if (boot === "unit") {
    // a failed run of the unit (e.g. before HOST_IP was up) would refuse a start
    await run(hostUnitArgv.resetFailed(paths.hostUnit)).catch(() => undefined);
    if ((await run(hostUnitArgv.start(paths.hostUnit))).exitCode === 0) how = "systemd";
  }
  if (how === "detached") {
    const log = openSync(paths.logFile, "a", 0o600);
    child = spawn(binary, hostRelayArgs(config), { detached: true, stdio: ["ignore", log, log], env: { ...process.env, ...env } as NodeJS.ProcessEnv });
    child.unref();
    if (child.pid === undefined) throw new U7sError("cannot start the VXLAN relay's host side", { hint: `see ${paths.logFile}` });
  }
  for (const deadline = Date.now() + 10_000; Date.now() < deadline; await Bun.sleep(50)) {
    const pid = hostRelayPid(paths);
    if (existsSync(paths.socket) && pid !== undefined && (child === undefined || pid === child.pid)) return { how, pid, boot };
    if (child !== undefined && child.exitCode !== null) break;
  }
  const tail = existsSync(paths.logFile) ? readFileSync(paths.logFile, "utf8").trim().split("\n").slice(-3).join("\n") : "";
  throw new U7sError(`the VXLAN relay's host side did not start (it serves ${paths.socket})`, {
    detail: tail || undefined,
    hint: `see ${paths.logFile}; or use the engine's path: --vxlan-relay=off`,
  });
}

/**
 * removeHostRelayUnit disables (and stops) the host side's unit and removes its file, when u7s wrote it:
 * "removed", "foreign" (a unit of that name u7s did not write: untouched) or "none".
 */
export async function removeHostRelayUnit(paths: RelayPaths, run: Runner): Promise<"removed" | "foreign" | "none"> {
  if (!existsSync(paths.hostUnitFile)) return "none";
  const file = readFileSync(paths.hostUnitFile, "utf8");
  if (!file.startsWith(`${UNIT_MARKER}\n`)) return "foreign";
  // without a user manager (a host without systemd sharing this home) there is nothing to disable: the file goes
  await run(hostUnitArgv.disableNow(paths.hostUnit)).catch(() => undefined);
  const removed = removeHostUnit(paths.hostUnitFile);
  await run(hostUnitArgv.daemonReload).catch(() => undefined);
  return removed === "removed" ? "removed" : "none";
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
  const { openUdp, closeFd, setGro } = await import("./udp.ts");
  const { serveSockets } = await import("./fdpass.ts");
  mkdirSync(paths.socketDir, { recursive: true, mode: 0o700 });
  const fd = openUdp({ ip: config.hostIp, port: config.portFlannel }, { rcvbuf: HOST_RCVBUF });
  const meta: RelayMeta = { hostIp: config.hostIp, flannelPort: config.portFlannel, nodeName: config.nodeName };
  rmSync(paths.socket, { force: true });
  const server = serveSockets(
    paths.socket,
    (peer) => {
      deps.log(`handing the host socket ${config.hostIp}:${config.portFlannel}/udp to pid ${peer.pid}`);
      // UDP GRO off: a reader that wants coalesced datagrams turns it on itself (relay.ts); one that does not know
      // them (an older relay after one that had it on) must not get runs of datagrams as one.
      setGro(fd, false);
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
