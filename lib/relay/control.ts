// The shared memory between the relay's main thread and its data-loop Workers: a control block the main
// thread writes (routes, peers, stop) under a sequence lock, and counters each Worker alone writes. A
// Worker blocked in poll(2) cannot run message handlers, so it reads its orders here after a wake-up
// (eventfd(2)) or its poll timeout.

/** MAX_ROUTES: sockets one loop reads (one per peer for egress); more peers than this is an error. */
export const MAX_ROUTES = 256;
/** MAX_PEERS: peer addresses the ingress loop accepts from. */
export const MAX_PEERS = 1024;

/** CTL: the control block's Int32Array slots. SEQ is odd while the main thread writes, ACK the last SEQ a loop applied. */
export const CTL = { stop: 0, seq: 1, ack: 2, nroutes: 3, npeers: 4, wakeFd: 5, routes: 8, routeSize: 4, peers: 8 + 4 * MAX_ROUTES } as const;
/** CTL_LENGTH: the control block's length in Int32 slots. */
export const CTL_LENGTH = CTL.peers + MAX_PEERS;

/**
 * STAT: the counters' Float64Array slots (one writer each: the loop that owns the block). packets/bytes: relayed;
 * then drops by reason; then the loop's work: poll wake-ups, recvmmsg calls, datagrams received (each segment of
 * a GRO run), GRO runs received (messages of several datagrams), GSO sends, GSO refusals (fallback to one per message).
 */
export const STAT = {
  packets: 0, bytes: 1, notVxlan: 2, unknownPeer: 3, sendErrors: 4, truncated: 5, recvErrors: 6,
  wakeups: 7, recvCalls: 8, datagrams: 9, groRuns: 10, gsoSends: 11, gsoFallbacks: 12,
} as const;
/** STAT_LENGTH: the counter block's length. */
export const STAT_LENGTH = 16;

/** Route: datagrams read from inFd are sent from outFd to destIp:destPort (destIp as a 32-bit number). */
export interface Route {
  inFd: number;
  outFd: number;
  destIp: number;
  destPort: number;
}

/** LoopConfig: what one loop reads and the senders it accepts (checkPeers off: any sender). */
export interface LoopConfig {
  routes: Route[];
  peers: number[];
}

/** newControl allocates a control block on shared memory. */
export function newControl(wakeFd: number): Int32Array {
  const ctl = new Int32Array(new SharedArrayBuffer(CTL_LENGTH * 4));
  ctl[CTL.wakeFd] = wakeFd;
  return ctl;
}

/** newStats allocates a counter block on shared memory. */
export function newStats(): Float64Array {
  return new Float64Array(new SharedArrayBuffer(STAT_LENGTH * 8));
}

/** writeConfig publishes a loop's config (main thread) and returns its sequence number, for waiting on ACK. */
export function writeConfig(ctl: Int32Array, cfg: LoopConfig): number {
  if (cfg.routes.length > MAX_ROUTES) throw new Error(`too many relay routes: ${cfg.routes.length}, at most ${MAX_ROUTES}`);
  if (cfg.peers.length > MAX_PEERS) throw new Error(`too many relay peers: ${cfg.peers.length}, at most ${MAX_PEERS}`);
  Atomics.add(ctl, CTL.seq, 1); // odd: writing
  cfg.routes.forEach((r, i) => {
    const o = CTL.routes + i * CTL.routeSize;
    ctl[o] = r.inFd;
    ctl[o + 1] = r.outFd;
    ctl[o + 2] = r.destIp | 0;
    ctl[o + 3] = r.destPort;
  });
  ctl[CTL.nroutes] = cfg.routes.length;
  cfg.peers.forEach((p, i) => (ctl[CTL.peers + i] = p | 0));
  ctl[CTL.npeers] = cfg.peers.length;
  return Atomics.add(ctl, CTL.seq, 1) + 1; // even: done
}

/** readConfig reads a consistent config (loop side) and its sequence number, or undefined while one is being written. */
export function readConfig(ctl: Int32Array): { seq: number; cfg: LoopConfig } | undefined {
  const seq = Atomics.load(ctl, CTL.seq);
  if (seq % 2 === 1) return undefined;
  const routes: Route[] = [];
  const nroutes = ctl[CTL.nroutes]!;
  for (let i = 0; i < nroutes; i++) {
    const o = CTL.routes + i * CTL.routeSize;
    routes.push({ inFd: ctl[o]!, outFd: ctl[o + 1]!, destIp: ctl[o + 2]! >>> 0, destPort: ctl[o + 3]! });
  }
  const peers: number[] = [];
  const npeers = ctl[CTL.npeers]!;
  for (let i = 0; i < npeers; i++) peers.push(ctl[CTL.peers + i]! >>> 0);
  if (Atomics.load(ctl, CTL.seq) !== seq) return undefined;
  return { seq, cfg: { routes, peers } };
}
