// TEMPORARY shim of relay-core's lib/relay/fdpass.ts (RELAY-CONTRACT.md); replaced when relay-core is merged.
/** serveSockets serves fds over a 0600 unix socket to peers of this uid. */
export function serveSockets(_path: string, _give: (peer: { uid: number; pid: number }) => { fds: number[]; meta: unknown } | undefined): { close(): void } {
  throw new Error("relay-core's serveSockets is not merged yet");
}
/** fetchSockets fetches fds from serveSockets. */
export async function fetchSockets(_path: string, _timeoutMs: number): Promise<{ fds: number[]; meta: unknown }> {
  throw new Error("relay-core's fetchSockets is not merged yet");
}
