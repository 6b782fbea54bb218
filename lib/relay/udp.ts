// TEMPORARY shim of relay-core's lib/relay/udp.ts (RELAY-CONTRACT.md); replaced when relay-core is merged.
/** openUdp opens a UDP socket bound to ip:port and returns its fd. */
export function openUdp(_bind: { ip: string; port: number }, _opts?: { rcvbuf?: number; sndbuf?: number }): number {
  throw new Error("relay-core's openUdp is not merged yet");
}
/** closeFd closes a file descriptor. */
export function closeFd(_fd: number): void {}
