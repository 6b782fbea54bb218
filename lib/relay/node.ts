// The node side of the VXLAN relay: `u7s vxlan-relay node`, run by systemd in the node
// (assets/u7s-vxlan-relay.service, Restart=always). It fetches the host socket from the host side
// over the mounted unix socket, starts the relay (relay.ts) and keeps the steering (steer.ts) in step
// with Flannel's peers. On SIGTERM it takes its rules out; when it is killed, the unit's
// ExecStopPost does (`u7s vxlan-relay node --cleanup`).
import { readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Runner } from "../exec.ts";
import { fetchSockets } from "./fdpass.ts";
import { isRelayMeta, NODE_SOCKET_DIR, SOCKET_NAME, type RelayMeta } from "./host.ts";
import { startRelay, type Relay, type RelayStats } from "./relay.ts";
import { applySteering, FDB_ARGV, fdbPeers, newZone, removeSteering, steerKey } from "./steer.ts";

/** NODE_STATUS_FILE is where the node relay reports itself (read by `u7s status`); /run is a tmpfs: a restarted node starts without it. */
export const NODE_STATUS_FILE = "/run/u7s-vxlan-relay.json";
/** ZONE_FILE remembers the last relay run's conntrack zone, so the next run takes another. */
const ZONE_FILE = "/run/u7s-vxlan-relay.zone";
/** PEER_POLL_MS: how often the relay looks at flannel.1's peers (Flannel adds one when a node joins). */
export const PEER_POLL_MS = 2_000;

/** NodeRelayStatus is NODE_STATUS_FILE's content. */
export interface NodeRelayStatus {
  pid: number;
  since: string;
  updated: string;
  hostIp: string;
  flannelPort: number;
  zone: number;
  /** peers: each peer VTEP and the relay's local port its datagrams are redirected to. */
  peers: Record<string, number>;
  stats: RelayStats;
}

/** NodeRelayDeps are what the node relay needs from the outside (injectable for tests). */
export interface NodeRelayDeps {
  run: Runner;
  log: (line: string) => void;
  socketPath?: string;
  /** signal: aborting it stops the relay. */
  signal: AbortSignal;
}

/** fetchHostSocket fetches the host socket, trying again every second until the signal aborts (the host side may start after the node). */
async function fetchHostSocket(deps: NodeRelayDeps): Promise<{ fd: number; meta: RelayMeta } | undefined> {
  const path = deps.socketPath ?? join(NODE_SOCKET_DIR, SOCKET_NAME);
  let said = "";
  while (!deps.signal.aborted) {
    try {
      const got = await fetchSockets(path, 5_000);
      if (got.fds.length !== 1 || !isRelayMeta(got.meta)) throw new Error(`the host side sent ${got.fds.length} sockets and ${JSON.stringify(got.meta)}`);
      return { fd: got.fds[0]!, meta: got.meta };
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      if (msg !== said) deps.log(`waiting for the host side at ${path}: ${msg}`);
      said = msg;
      await Bun.sleep(1_000);
    }
  }
  return undefined;
}

/** runNodeRelay runs the node side until deps.signal aborts, then takes the steering out. */
export async function runNodeRelay(deps: NodeRelayDeps): Promise<void> {
  const got = await fetchHostSocket(deps);
  if (!got) return;
  const { meta } = got;
  const relay: Relay = startRelay({ hostFd: got.fd, flannelPort: meta.flannelPort, inject: { ip: "127.0.0.1", port: meta.flannelPort }, log: { warn: (t: string) => deps.log(t), debug: () => {} } });
  // a data loop that ends by itself ends the run: the unit's ExecStopPost falls back, systemd restarts it
  let failed: string | undefined;
  void relay.exited.then((why) => {
    if (why !== undefined) {
      failed = why;
      deps.log(`relay stopped: ${why}`);
    }
  });
  let last: number | undefined;
  try {
    last = Number(readFileSync(ZONE_FILE, "utf8"));
  } catch {
    // first run since the node started
  }
  const zone = newZone(last);
  writeFileSync(ZONE_FILE, String(zone));
  const since = new Date().toISOString();
  deps.log(`relaying VXLAN on port ${meta.flannelPort} through host ${meta.hostIp} (conntrack zone ${zone})`);
  let applied = "";
  let ports = new Map<string, number>();
  try {
    while (!deps.signal.aborted && failed === undefined) {
      const fdb = await deps.run(FDB_ARGV);
      const peers = fdb.exitCode === 0 ? fdbPeers(fdb.stdout, meta.hostIp) : [];
      ports = relay.setPeers(peers);
      const key = steerKey(ports, meta.flannelPort, zone);
      if (key !== applied) {
        try {
          await applySteering(deps.run, ports, meta.flannelPort, zone);
          applied = key;
          deps.log(`peers: ${peers.length ? [...ports].map(([p, l]) => `${p} -> 127.0.0.1:${l}`).join(", ") : "none (flannel.1 has no peers yet)"}`);
        } catch (err) {
          deps.log(`cannot steer VXLAN to the relay: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
      writeStatus({ pid: process.pid, since, updated: new Date().toISOString(), hostIp: meta.hostIp, flannelPort: meta.flannelPort, zone, peers: Object.fromEntries(ports), stats: relay.stats() });
      await sleepOrAbort(PEER_POLL_MS, deps.signal);
    }
  } finally {
    await removeSteering(deps.run);
    await relay.stop();
    rmSync(NODE_STATUS_FILE, { force: true });
    deps.log("stopped; VXLAN leaves through the engine's network");
  }
  if (failed !== undefined) throw new Error(`the relay failed: ${failed}`);
}

/** CLEANED_UP is what the unit's ExecStopPost logs once the rules are out (the e2e test looks for it after a SIGKILL). */
export const CLEANED_UP = "steering rules removed: VXLAN leaves through the engine's network";

/** cleanupNodeRelay takes the steering out (the unit's ExecStopPost: also after the relay was killed). */
export async function cleanupNodeRelay(run: Runner, log: (line: string) => void): Promise<void> {
  await removeSteering(run);
  rmSync(NODE_STATUS_FILE, { force: true });
  log(CLEANED_UP);
}

function writeStatus(s: NodeRelayStatus): void {
  const tmp = `${NODE_STATUS_FILE}.tmp`;
  writeFileSync(tmp, JSON.stringify(s));
  renameSync(tmp, NODE_STATUS_FILE);
}

function sleepOrAbort(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });
}
