// The VXLAN relay's part in `u7s up` and `u7s down`: the host side next to the node, the node side's unit.
import type { NodeConfig } from "../config/resolve.ts";
import type { ContainerState, Engine } from "../engine/engine.ts";
import { U7sError } from "../errors.ts";
import { lastLines, type Runner } from "../exec.ts";
import type { Log } from "../log.ts";
import { nodeNames } from "../node/names.ts";
import { createdSettings, RELAY_ENV } from "../node/spec.ts";
import type { XdgEnv } from "../state/paths.ts";
import { existsSync, realpathSync } from "node:fs";
import { ENABLE_NODE_UNIT, NODE_SOCKET_DIR, hostRelayPid, prepareRelayDirs, relayPaths, removeHostRelayUnit, startHostRelay, stopHostRelay } from "./host.ts";
import { NODE_STATUS_FILE, type NodeRelayStatus } from "./node.ts";

/** RelayUpEnv is what the relay's steps of `up` and `down` need. */
export interface RelayUpEnv {
  config: NodeConfig;
  engine: Engine;
  log: Log;
  env: XdgEnv;
  /** hostname: the machine's real host name (state is kept per host). */
  hostname: string;
  /** runner runs host commands (systemctl --user, systemd-run). */
  runner: Runner;
  /** atBoot false: the node lives only as long as a batch job (`up --job`), so its host side is not made to come back at boot. */
  atBoot?: boolean;
}

/** prepareRelay makes the directories the node mounts when the relay is on (before the node is created or started). */
export function prepareRelay(e: RelayUpEnv): void {
  if (e.config.vxlanRelay) prepareRelayDirs(relayPaths(e.env, e.hostname, e.config.nodeName));
}

/**
 * staleSocketMount says when the node mounts its socket directory from elsewhere than paths.socketDir: a node
 * made by a u7s that kept it under $XDG_RUNTIME_DIR, which would not boot after a reboot and cannot reach a
 * host side serving in the new place. undefined when the mount is where u7s serves.
 */
export function staleSocketMount(state: Pick<ContainerState, "mounts" | "name">, socketDir: string): string | undefined {
  const m = state.mounts.find((x) => x.destination === NODE_SOCKET_DIR);
  if (m === undefined || m.source === socketDir) return undefined;
  // the engine may report the path through a symlink resolved (or not): the same directory is no problem
  try {
    if (realpathSync(m.source) === realpathSync(socketDir)) return undefined;
  } catch {
    // one of them is missing: not the same
  }
  return `node ${state.name} mounts the VXLAN relay's socket directory from ${m.source} (an earlier u7s's place, which a reboot removes, so the node would not boot): run \`u7s up --recreate\` to move it to ${socketDir}`;
}

/**
 * upRelay starts the relay for an up node that was created with it (its settings record says so):
 * the host side unless it runs, then the node's unit (enabled, so it comes back with the node).
 */
export async function upRelay(e: RelayUpEnv): Promise<void> {
  const name = nodeNames(e.config).container;
  const state = await e.engine.inspectContainer(name);
  if (!state || createdSettings(state)?.[RELAY_ENV] !== "on") return;
  const paths = relayPaths(e.env, e.hostname, e.config.nodeName);
  const stale = staleSocketMount(state, paths.socketDir);
  if (stale !== undefined) e.log.warn(stale);
  const started = await startHostRelay(paths, e.config, e.env, e.runner, undefined, e.atBoot ?? true);
  const r = await e.engine.exec(name, ENABLE_NODE_UNIT);
  if (r.exitCode !== 0) {
    throw new U7sError(`cannot start the VXLAN relay in node ${name}`, { detail: lastLines(r.stderr, 3) || undefined, hint: "see `u7s exec -- journalctl -u u7s-vxlan-relay`; or use the engine's path: `u7s up --recreate --vxlan-relay=off`" });
  }
  const how = { running: "already running", systemd: `systemd --user unit ${paths.hostUnit}`, detached: "a detached process" }[started.how];
  e.log.info(`VXLAN relay: ${e.config.hostIp}:${e.config.portFlannel}/udp served by pid ${started.pid} (${how}); the node relays Flannel's VXLAN through it`);
  if (started.boot !== "unit" && started.boot !== "not-asked") e.log.warn(`VXLAN relay: ${NO_BOOT[started.boot](paths.hostUnitFile)}`);
}

/** NO_BOOT says why the host side will not come back by itself after a reboot, and what brings it back. */
const NO_BOOT = {
  "no-user-systemd": () => "no systemd user manager here, so the relay's host side will not come back by itself after a reboot: run `u7s up` after one (until then the node's VXLAN leaves through the engine and none arrives)",
  "foreign-unit": (file: string) => `${file} is not u7s's (left alone), so the relay's host side will not come back by itself after a reboot: run \`u7s up\` after one`,
};

/** downRelay stops the node's host side (after the node is gone) and removes its unit (only one u7s wrote); nothing when there is none. */
export async function downRelay(e: Omit<RelayUpEnv, "engine">): Promise<void> {
  const paths = relayPaths(e.env, e.hostname, e.config.nodeName);
  const unit = await removeHostRelayUnit(paths, e.runner);
  if (unit === "removed") e.log.info(`removed the VXLAN relay's systemd --user unit ${paths.hostUnitFile}`);
  if (unit === "foreign") e.log.warn(`kept ${paths.hostUnitFile}: u7s did not write it`);
  if (await stopHostRelay(paths)) e.log.info(`stopped the VXLAN relay's host side of ${e.config.nodeName}`);
}

/** RelayReport is what `u7s status` says about the node's VXLAN path. */
export interface RelayReport {
  /** path: "relay" when VXLAN to other hosts goes through u7s's relay, "engine" when through the engine's network. */
  path: "relay" | "engine";
  /** why: one line saying why that path. */
  why: string;
  /** hostSide: the host side's pid, when it runs. */
  hostSide: { pid: number; socket: string } | null;
  /** hostUnit: the host side's systemd --user unit u7s wrote (it starts it at boot), null when there is none (nothing starts it at boot). */
  hostUnit: string | null;
  /** node: the node relay's own report (peers, their ports, counters), when it runs. */
  node: NodeRelayStatus | null;
}

/** STALE_MS: a node relay report older than this means the relay is not running. */
const STALE_MS = 10_000;

/**
 * hostSideDown says why the host side is not running and what it costs: the node relay waits for it
 * (egress leaves through the engine) and nothing receives on PORT_FLANNEL, which the engine does not
 * publish for a relay node: no VXLAN arrives from other hosts until `u7s up`.
 */
export function hostSideDown(hostUnit: string | null): string {
  const cause = hostUnit
    ? `the relay's host side is not running (its systemd --user unit ${hostUnit} should run it: \`systemctl --user status ${hostUnit}\`)`
    : "the relay's host side is not running (no systemd --user unit starts it at boot: after a reboot, or it was stopped)";
  return `${cause}; \`u7s up\` restores the relay. Meanwhile the node's VXLAN leaves through the engine, and none from other hosts arrives (nothing receives on PORT_FLANNEL)`;
}

/** relayReport finds out which VXLAN path the node uses and why. */
export async function relayReport(e: Omit<RelayUpEnv, "runner">, state: ContainerState | undefined, now = Date.now()): Promise<RelayReport> {
  const none = { hostSide: null, hostUnit: null, node: null };
  const record = state ? createdSettings(state) : undefined;
  if (!state) return { path: "engine", why: "no node", ...none };
  if (record?.[RELAY_ENV] !== "on") {
    const why = e.config.vxlanRelay ? "the node was created without the relay (`u7s up --recreate` turns it on)" : "U7S_VXLAN_RELAY=off: the engine publishes PORT_FLANNEL";
    return { path: "engine", why, ...none };
  }
  const paths = relayPaths(e.env, e.hostname, e.config.nodeName);
  const pid = hostRelayPid(paths);
  const hostSide = pid !== undefined ? { pid, socket: paths.socket } : null;
  const hostUnit = existsSync(paths.hostUnitFile) ? paths.hostUnit : null;
  let node: NodeRelayStatus | null = null;
  if (state.running) {
    const r = await e.engine.exec(state.name, ["cat", NODE_STATUS_FILE]);
    try {
      if (r.exitCode === 0) node = JSON.parse(r.stdout) as NodeRelayStatus;
    } catch {
      node = null;
    }
  }
  const fresh = node !== null && now - Date.parse(node.updated) < STALE_MS;
  if (!state.running) return { path: "engine", why: "the node is not running", hostSide, hostUnit, node: null };
  if (!hostSide) return { path: "engine", why: hostSideDown(hostUnit), hostSide, hostUnit, node: fresh ? node : null };
  if (!fresh) return { path: "engine", why: "the node's relay is not running (systemd restarts it: `u7s exec -- systemctl status u7s-vxlan-relay`); egress leaves through the engine, ingress waits in the host socket", hostSide, hostUnit, node: null };
  const peers = Object.keys(node!.peers).length;
  return { path: "relay", why: peers === 0 ? "relay ready; no peers yet (Flannel knows no other host)" : `relaying for ${peers} ${peers === 1 ? "peer" : "peers"}`, hostSide, hostUnit, node };
}
