// The VXLAN relay's part in `u7s up` and `u7s down`: the host side next to the node, the node side's unit.
import type { NodeConfig } from "../config/resolve.ts";
import type { ContainerState, Engine } from "../engine/engine.ts";
import { U7sError } from "../errors.ts";
import { lastLines, type Runner } from "../exec.ts";
import type { Log } from "../log.ts";
import { nodeNames } from "../node/names.ts";
import { createdSettings, RELAY_ENV } from "../node/spec.ts";
import type { XdgEnv } from "../state/paths.ts";
import { ENABLE_NODE_UNIT, hostRelayPid, hostRelayUnit, prepareRelayDirs, relayPaths, startHostRelay, stopHostRelay } from "./host.ts";
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
}

/** prepareRelay makes the directories the node mounts when the relay is on (before the node is created or started). */
export function prepareRelay(e: RelayUpEnv): void {
  if (e.config.vxlanRelay) prepareRelayDirs(relayPaths(e.env, e.hostname, e.config.nodeName));
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
  const started = await startHostRelay(paths, e.config, e.env, e.runner);
  const r = await e.engine.exec(name, ENABLE_NODE_UNIT);
  if (r.exitCode !== 0) {
    throw new U7sError(`cannot start the VXLAN relay in node ${name}`, { detail: lastLines(r.stderr, 3) || undefined, hint: "see `u7s exec -- journalctl -u u7s-vxlan-relay`; or use the engine's path: `u7s up --recreate --vxlan-relay=off`" });
  }
  const how = { running: "already running", systemd: `systemd --user unit ${hostRelayUnit(e.config.nodeName)}`, detached: "a detached process" }[started.how];
  e.log.info(`VXLAN relay: ${e.config.hostIp}:${e.config.portFlannel}/udp served by pid ${started.pid} (${how}); the node relays Flannel's VXLAN through it`);
}

/** downRelay stops the node's host side (after the node is gone); nothing when none runs or there is no runtime directory. */
export async function downRelay(e: Omit<RelayUpEnv, "engine" | "runner">): Promise<void> {
  if (!e.env.XDG_RUNTIME_DIR?.startsWith("/")) return;
  if (await stopHostRelay(relayPaths(e.env, e.hostname, e.config.nodeName))) e.log.info(`stopped the VXLAN relay's host side of ${e.config.nodeName}`);
}

/** RelayReport is what `u7s status` says about the node's VXLAN path. */
export interface RelayReport {
  /** path: "relay" when VXLAN to other hosts goes through u7s's relay, "engine" when through the engine's network. */
  path: "relay" | "engine";
  /** why: one line saying why that path. */
  why: string;
  /** hostSide: the host side's pid, when it runs. */
  hostSide: { pid: number; socket: string } | null;
  /** node: the node relay's own report (peers, their ports, counters), when it runs. */
  node: NodeRelayStatus | null;
}

/** STALE_MS: a node relay report older than this means the relay is not running. */
const STALE_MS = 10_000;

/** relayReport finds out which VXLAN path the node uses and why. */
export async function relayReport(e: Omit<RelayUpEnv, "runner">, state: ContainerState | undefined, now = Date.now()): Promise<RelayReport> {
  const none = { hostSide: null, node: null };
  const record = state ? createdSettings(state) : undefined;
  if (!state) return { path: "engine", why: "no node", ...none };
  if (record?.[RELAY_ENV] !== "on") {
    const why = e.config.vxlanRelay ? "the node was created without the relay (`u7s up --recreate` turns it on)" : "U7S_VXLAN_RELAY=off: the engine publishes PORT_FLANNEL";
    return { path: "engine", why, ...none };
  }
  const paths = !e.env.XDG_RUNTIME_DIR?.startsWith("/") ? undefined : relayPaths(e.env, e.hostname, e.config.nodeName);
  const pid = paths ? hostRelayPid(paths) : undefined;
  const hostSide = pid !== undefined && paths ? { pid, socket: paths.socket } : null;
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
  if (!state.running) return { path: "engine", why: "the node is not running", hostSide, node: null };
  if (!hostSide) return { path: "engine", why: "the relay's host side is not running (`u7s up` starts it); nothing receives on PORT_FLANNEL", hostSide, node: fresh ? node : null };
  if (!fresh) return { path: "engine", why: "the node's relay is not running (systemd restarts it: `u7s exec -- systemctl status u7s-vxlan-relay`); egress leaves through the engine, ingress waits in the host socket", hostSide, node: null };
  const peers = Object.keys(node!.peers).length;
  return { path: "relay", why: peers === 0 ? "relay ready; no peers yet (Flannel knows no other host)" : `relaying for ${peers} ${peers === 1 ? "peer" : "peers"}`, hostSide, node };
}
