// relay-worker: one data loop of the VXLAN relay, on its own thread (a Bun Worker) because it blocks in
// poll(2): wait for datagrams on the route sockets, take each socket's queue in batches (recvmmsg(2); with
// UDP GRO a message may hold a run of datagrams), keep what passes the checks (sender is a peer, each datagram
// is VXLAN per RFC 7348) and send it on in one sendmmsg(2) per batch, runs of same-size datagrams as one UDP
// GSO message each. Orders and counters: control.ts. Started by relay.ts's startRelay.
import { CTL, MAX_ROUTES, STAT, readConfig, type LoopConfig, type Route } from "./control.ts";
import { EAGAIN, EINTR, POLLERR, POLLFD_SIZE, POLLIN, addr, libc } from "./ffi.ts";
import { formatIpv4, RecvBatch, SendBatch } from "./udp.ts";
import { isVxlanAt } from "./vxlan.ts";

/** LoopInit: the first message a loop gets. */
export interface LoopInit {
  ctl: Int32Array;
  stats: Float64Array;
  batch: number;
  checkPeers: boolean;
  /** gso: send runs of datagrams as UDP GSO messages (udp(7) UDP_SEGMENT); off: one datagram per message. */
  gso?: boolean;
  /** rounds: batches taken from one socket before looking at the others (fairness between peers). */
  rounds?: number;
}

declare const self: Worker;

/** DrainContext: what drain checks against and counts into. */
export interface DrainContext {
  peers: Set<number>;
  checkPeers: boolean;
  stats: Float64Array;
  rounds: number;
  /** gso: try UDP GSO sends; gsoOff: the out sockets the kernel refused GSO on (one datagram per message there). */
  gso: boolean;
  gsoOff: Set<number>;
}

/**
 * drain relays what is queued on one route's socket: up to `rounds` batches (then the other sockets get
 * their turn), each received with one recvmmsg(2), checked (whole, from a peer, each datagram VXLAN; a GRO
 * run is cut where a datagram fails, the rest goes on) and sent with one sendmmsg(2). Counts what passed and
 * why the rest did not.
 */
export function drain(route: Route, sender: SendBatch, rb: RecvBatch, ctx: DrainContext): void {
  const { stats } = ctx;
  sender.gso = ctx.gso && !ctx.gsoOff.has(route.outFd);
  const flush = (): void => {
    const r = sender.flush(route.outFd);
    stats[STAT.packets]! += r.sent;
    stats[STAT.bytes]! += r.bytes;
    stats[STAT.sendErrors]! += r.errors;
    stats[STAT.gsoSends]! += r.gsoSends;
    if (r.gsoRefused) {
      stats[STAT.gsoFallbacks]!++;
      ctx.gsoOff.add(route.outFd);
    }
  };
  // queue sends len bytes at offset of rb.buf, datagrams of seg bytes, in pieces the batch can hold; a full batch is sent first
  const queue = (offset: number, len: number, seg: number): void => {
    const most = sender.size * seg;
    for (let o = offset; o < offset + len; o += most) {
      const n = Math.min(most, offset + len - o);
      if (!sender.add(rb.bufAddr + o, n, seg)) {
        flush();
        sender.add(rb.bufAddr + o, n, seg);
      }
    }
  };
  for (let round = 0; round < ctx.rounds; round++) {
    stats[STAT.recvCalls]!++;
    const n = rb.recv(route.inFd);
    if (n <= 0) {
      if (n < 0 && -n !== EAGAIN && -n !== EINTR) stats[STAT.recvErrors]!++;
      return;
    }
    for (let k = 0; k < n; k++) {
      const len = rb.length(k);
      const gro = rb.segSize(k);
      const seg = gro > 0 && gro < len ? gro : len;
      const segs = seg === len ? 1 : Math.ceil(len / seg);
      stats[STAT.datagrams]! += segs;
      if (segs > 1) stats[STAT.groRuns]!++;
      if (rb.truncated(k)) stats[STAT.truncated]! += segs;
      else if (ctx.checkPeers && !ctx.peers.has(rb.sourceIp(k))) stats[STAT.unknownPeer]! += segs; // one run, one sender
      else {
        const base = k * rb.slot;
        let good = -1; // where the current run of good datagrams starts
        for (let off = 0; off < len || off === 0; off += seg) {
          if (isVxlanAt(rb.buf, base + off, Math.min(seg, len - off))) {
            if (good < 0) good = off;
          } else {
            stats[STAT.notVxlan]!++;
            if (good >= 0) queue(base + good, off - good, seg);
            good = -1;
          }
          if (seg === 0) break;
        }
        if (good >= 0) queue(base + good, len - good, seg);
      }
    }
    if (sender.count > 0) flush();
    if (n < rb.size) return; // the queue is empty: no need for another recvmmsg to learn it
  }
}

/** Loop: one data loop's state; step waits once (poll(2)) and relays what is ready. */
export interface Loop {
  /** step applies new orders, waits up to timeoutMs for datagrams or a wake-up, relays them; returns poll's count. */
  step(timeoutMs: number): number;
}

/** newLoop makes a data loop from its first message (runLoop steps it; tests step it on their own thread). */
export function newLoop(init: LoopInit): Loop {
  const { ctl, stats, batch, checkPeers } = init;
  const gso = init.gso ?? true;
  const gsoOff = new Set<number>();
  const rounds = init.rounds ?? 8;
  const rb = new RecvBatch(batch);
  const wakeFd = ctl[CTL.wakeFd]!;
  const wakeBuf = new Uint8Array(8);
  const pfds = new Uint8Array((MAX_ROUTES + 1) * POLLFD_SIZE);
  const pdv = new DataView(pfds.buffer);
  const pfdsAddr = addr(pfds);
  pdv.setInt32(0, wakeFd, true);
  pdv.setInt16(4, POLLIN, true);
  let seq = -1;
  let cfg: LoopConfig = { routes: [], peers: [] };
  let peers = new Set<number>();
  let senders: SendBatch[] = [];
  const senderCache = new Map<string, SendBatch>();

  const apply = (): void => {
    const got = readConfig(ctl);
    if (got === undefined || got.seq === seq) return;
    seq = got.seq;
    cfg = got.cfg;
    peers = new Set(cfg.peers);
    gsoOff.clear(); // descriptors may be new ones: ask the kernel again
    senders = cfg.routes.map((r) => {
      const key = `${r.destIp}:${r.destPort}`;
      let s = senderCache.get(key);
      if (s === undefined) senderCache.set(key, (s = new SendBatch(batch, { ip: formatIpv4(r.destIp), port: r.destPort })));
      return s;
    });
    cfg.routes.forEach((r, i) => {
      pdv.setInt32((i + 1) * POLLFD_SIZE, r.inFd, true);
      pdv.setInt16((i + 1) * POLLFD_SIZE + 4, POLLIN, true);
    });
    Atomics.store(ctl, CTL.ack, seq);
  };

  return {
    step(timeoutMs: number): number {
      apply();
      const ready = libc.poll(pfdsAddr, cfg.routes.length + 1, timeoutMs);
      if (ready <= 0) return ready;
      stats[STAT.wakeups]!++;
      if ((pdv.getInt16(6, true) & POLLIN) !== 0) libc.read(wakeFd, wakeBuf, 8);
      for (let i = 0; i < cfg.routes.length; i++) {
        const rev = pdv.getInt16((i + 1) * POLLFD_SIZE + 6, true);
        if ((rev & (POLLIN | POLLERR)) !== 0) drain(cfg.routes[i]!, senders[i]!, rb, { peers, checkPeers, stats, rounds, gso, gsoOff });
      }
      return ready;
    },
  };
}

/** runLoop relays until the control block says stop. */
export function runLoop(init: LoopInit): void {
  const loop = newLoop(init);
  while (Atomics.load(init.ctl, CTL.stop) === 0) loop.step(1000);
}

// Worker entry: the first message starts the loop; "stopped" tells the main thread it may close the sockets.
if (!Bun.isMainThread) {
  self.onmessage = (ev: MessageEvent<LoopInit>) => {
    runLoop(ev.data);
    self.postMessage("stopped");
  };
}
