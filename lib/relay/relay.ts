// TEMPORARY shim of relay-core's lib/relay/relay.ts (RELAY-CONTRACT.md); replaced when relay-core is merged.
import type { Log } from "../log.ts";
/** RelayStats are the relay's counters. */
export interface RelayStats {
  egress: { packets: number; bytes: number };
  ingress: { packets: number; bytes: number };
  dropped: { notVxlan: number; unknownPeer: number; sendErrors: number };
}
/** Relay is a running relay. */
export interface Relay {
  setPeers(ips: string[]): Map<string, number>;
  stats(): RelayStats;
  stop(): Promise<void>;
}
/** startRelay starts the relay's data loops. */
export function startRelay(_opts: { hostFd: number; flannelPort: number; inject: { ip: string; port: number }; log?: Log }): Relay {
  throw new Error("relay-core's startRelay is not merged yet");
}
