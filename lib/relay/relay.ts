// The VXLAN relay (issue 17): Flannel's VXLAN datagrams between this node and the other hosts go through a
// UDP socket of the host's network namespace (hostFd, bound to HOST_IP:PORT_FLANNEL and handed in by u7s
// on the host, fdpass.ts) instead of the engine's user-mode network. Two loops on their own threads:
// - egress: one local socket per peer (127.0.0.1:L_PEER; the node's iptables steer flannel.1's datagrams
//   for that peer there) -> sent from hostFd to PEER:PORT_FLANNEL;
// - ingress: hostFd -> only from a peer and only VXLAN (RFC 7348) -> sent to the node's own VXLAN socket.
// No open proxy: egress goes only to a peer's flannel port, ingress is taken only from peers.
import { U7sError } from "../errors.ts";
import type { Log } from "../log.ts";
import { CTL, newControl, newStats, STAT, writeConfig, type LoopConfig } from "./control.ts";
import { EFD_CLOEXEC, EFD_NONBLOCK, libc, errno } from "./ffi.ts";
import { closeFd, errnoName, localEndpoint, openUdp, parseIpv4, setGro, type Endpoint } from "./udp.ts";

/** RelayOptions: the host socket, the Flannel port (the same inside the node and on the host), where ingress goes. */
export interface RelayOptions {
  /** hostFd: the host namespace's UDP socket; the caller keeps owning it (stop does not close it). */
  hostFd: number;
  flannelPort: number;
  /** inject: the node's VXLAN socket (127.0.0.1:PORT_FLANNEL or the node's IP). */
  inject: Endpoint;
  /** egressIp: where the per-peer sockets listen (iptables REDIRECT sends local traffic to 127.0.0.1, iptables-extensions(8)). */
  egressIp?: string;
  /** batch: datagrams per recvmmsg/sendmmsg (1 turns batching off, for the bench). */
  batch?: number;
  /** rcvbuf/sndbuf: socket buffers asked for the relay's own sockets. */
  rcvbuf?: number;
  sndbuf?: number;
  /** gro: UDP GRO on the sockets the relay reads (hostFd, the egress sockets); default on. */
  gro?: boolean;
  /** gso: UDP GSO sends (runs of same-size datagrams as one message); default on. */
  gso?: boolean;
  log?: Pick<Log, "warn" | "debug">;
}

/** Counter: datagrams and their bytes. */
export interface Counter {
  packets: number;
  bytes: number;
}

/** LoopCounters: a data loop's work: poll wake-ups, recvmmsg calls, datagrams received, GRO runs, GSO sends and refusals. */
export interface LoopCounters {
  wakeups: number;
  recvCalls: number;
  datagrams: number;
  groRuns: number;
  gsoSends: number;
  gsoFallbacks: number;
}

/** RelayStats: what went each way and what was dropped, and why; whether GRO is on, and each loop's work. */
export interface RelayStats {
  egress: Counter;
  ingress: Counter;
  dropped: { notVxlan: number; unknownPeer: number; sendErrors: number; truncated: number; recvErrors: number };
  /** gro: the kernel took UDP_GRO on the host socket (false: turned off, or a kernel before 5.0). */
  gro: boolean;
  loops: { egress: LoopCounters; ingress: LoopCounters };
}

/** Relay: a running relay. */
export interface Relay {
  /** setPeers sets the hosts relayed to and from; returns each peer's local egress port (stable for a peer that stays). */
  setPeers(ips: string[]): Map<string, number>;
  /** stats reads the counters. */
  stats(): RelayStats;
  /** stop ends both loops and closes the relay's own sockets (not hostFd). */
  stop(): Promise<void>;
  /** exited settles when a loop ends by itself (an error): the reason; a stopped relay resolves it with undefined. */
  readonly exited: Promise<string | undefined>;
}

/** DEFAULT_BATCH: datagrams per system call; 64 x 1400 bytes ~ 90 KB, below the default socket buffers. */
export const DEFAULT_BATCH = 64;
/** DEFAULT_BUF: socket buffer size asked for (the kernel caps it at net.core.rmem_max/wmem_max, socket(7)). */
export const DEFAULT_BUF = 4 << 20;

/** LoopHandle: one Worker with its control and counters. */
interface LoopHandle {
  worker: Worker;
  ctl: Int32Array;
  stats: Float64Array;
  wakeFd: number;
  stopped: Promise<void>;
}

/**
 * workerUrl is the data loop's entry: the file next to this one, or in the compiled binary the entry point
 * compile.sh adds for it, which Bun names by its path from the project root (https://bun.sh/docs/bundler/executables, Worker).
 */
export function workerUrl(moduleUrl = import.meta.url): string {
  return moduleUrl.includes("/$bunfs/") ? "./lib/relay/relay-worker.ts" : new URL("./relay-worker.ts", moduleUrl).href;
}

/** startLoop starts one data loop on a Worker. */
function startLoop(batch: number, checkPeers: boolean, gso: boolean, onFail: (why: string) => void): LoopHandle {
  const wakeFd = libc.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wakeFd < 0) throw new U7sError(`cannot create the relay's wake-up descriptor: ${errnoName(errno())}`);
  const ctl = newControl(wakeFd);
  const stats = newStats();
  const worker = new Worker(workerUrl());
  let done!: () => void;
  const stopped = new Promise<void>((resolve) => (done = resolve));
  worker.onmessage = (ev) => {
    if (ev.data === "stopped") done();
  };
  worker.onerror = (ev) => {
    onFail(`relay loop failed: ${ev.message}`);
    done();
  };
  worker.postMessage({ ctl, stats, batch, checkPeers, gso });
  return { worker, ctl, stats, wakeFd, stopped };
}

/** wake interrupts a loop's poll(2) so it reads its control block now (eventfd(2): add 1). */
function wake(h: LoopHandle): void {
  const one = new BigUint64Array([1n]);
  libc.write(h.wakeFd, one, 8);
}

/** publish writes a loop's config, wakes it, and resolves once it runs with it. */
function publish(h: LoopHandle, cfg: LoopConfig): Promise<void> {
  const seq = writeConfig(h.ctl, cfg);
  wake(h);
  return new Promise((resolve) => {
    const check = () => {
      if (Atomics.load(h.ctl, CTL.ack) >= seq || Atomics.load(h.ctl, CTL.stop) !== 0) resolve();
      else setTimeout(check, 5);
    };
    check();
  });
}

/** counter reads a loop's packets and bytes. */
function counter(s: Float64Array): Counter {
  return { packets: s[STAT.packets]!, bytes: s[STAT.bytes]! };
}

/** loopCounters reads a loop's work counters. */
function loopCounters(s: Float64Array): LoopCounters {
  return {
    wakeups: s[STAT.wakeups]!,
    recvCalls: s[STAT.recvCalls]!,
    datagrams: s[STAT.datagrams]!,
    groRuns: s[STAT.groRuns]!,
    gsoSends: s[STAT.gsoSends]!,
    gsoFallbacks: s[STAT.gsoFallbacks]!,
  };
}

/** startRelay starts the two loops; call setPeers to relay anything (no peers: nothing passes). */
export function startRelay(opts: RelayOptions): Relay {
  if (!Number.isInteger(opts.flannelPort) || opts.flannelPort < 1 || opts.flannelPort > 65535) {
    throw new U7sError(`invalid Flannel port ${opts.flannelPort}: valid are 1-65535`, { exitCode: 2 });
  }
  const injectIp = parseIpv4(opts.inject.ip);
  if (injectIp === undefined) throw new U7sError(`invalid inject address ${JSON.stringify(opts.inject.ip)}: an IPv4 address`, { exitCode: 2 });
  const batch = opts.batch ?? DEFAULT_BATCH;
  const buf = { rcvbuf: opts.rcvbuf ?? DEFAULT_BUF, sndbuf: opts.sndbuf ?? DEFAULT_BUF };
  const egressIp = opts.egressIp ?? "127.0.0.1";
  const gro = opts.gro ?? true;
  const gso = opts.gso ?? true;
  const injectFd = openUdp({ ip: "0.0.0.0", port: 0 }, buf);
  // GRO on the host socket is turned on by its reader, this relay, which reads the segment sizes; stop turns it
  // off again, so whatever reads the socket next (a relay without GRO support) gets one datagram per read.
  const hostGro = gro && setGro(opts.hostFd, true);
  let failure: ((why: string | undefined) => void) | undefined;
  const exited = new Promise<string | undefined>((resolve) => (failure = resolve));
  let stopping = false;
  const onFail = (why: string) => {
    if (stopping) return;
    opts.log?.warn(why);
    failure!(why);
  };
  const egress = startLoop(batch, false, gso, onFail);
  const ingress = startLoop(batch, true, gso, onFail);
  const ports = new Map<string, { fd: number; port: number }>();
  let pending = Promise.resolve();

  const setPeers = (ips: string[]): Map<string, number> => {
    const bad = ips.filter((ip) => parseIpv4(ip) === undefined);
    if (bad.length > 0) throw new U7sError(`invalid relay peer ${bad.map((b) => JSON.stringify(b)).join(", ")}: IPv4 addresses only`, { exitCode: 2 });
    const want = [...new Set(ips)];
    for (const ip of want) {
      if (!ports.has(ip)) {
        const fd = openUdp({ ip: egressIp, port: 0 }, buf);
        if (gro) setGro(fd, true);
        ports.set(ip, { fd, port: localEndpoint(fd).port });
      }
    }
    const gone = [...ports.keys()].filter((ip) => !want.includes(ip));
    const goneFds = gone.map((ip) => ports.get(ip)!.fd);
    gone.forEach((ip) => ports.delete(ip));
    const routes = [...ports.entries()].map(([ip, p]) => ({ inFd: p.fd, outFd: opts.hostFd, destIp: parseIpv4(ip)!, destPort: opts.flannelPort }));
    const egressDone = publish(egress, { routes, peers: [] });
    const ingressDone = publish(ingress, {
      routes: [{ inFd: opts.hostFd, outFd: injectFd, destIp: injectIp, destPort: opts.inject.port }],
      peers: want.map((ip) => parseIpv4(ip)!),
    });
    // A removed peer's socket is closed only once the egress loop no longer polls it (its number could be reused).
    pending = pending.then(() => egressDone).then(() => ingressDone).then(() => goneFds.forEach((fd) => closeFd(fd)));
    opts.log?.debug(`relay peers: ${want.join(", ") || "none"}`);
    return new Map([...ports.entries()].map(([ip, p]) => [ip, p.port]));
  };

  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    for (const h of [egress, ingress]) {
      Atomics.store(h.ctl, CTL.stop, 1);
      wake(h);
    }
    await Promise.all([egress.stopped, ingress.stopped]);
    await pending;
    for (const h of [egress, ingress]) {
      h.worker.terminate();
      closeFd(h.wakeFd);
    }
    for (const p of ports.values()) closeFd(p.fd);
    ports.clear();
    closeFd(injectFd);
    if (hostGro) setGro(opts.hostFd, false);
    failure!(undefined);
  };

  // Before any peer: ingress reads hostFd already, so datagrams from unknown senders are counted and dropped.
  void publish(ingress, { routes: [{ inFd: opts.hostFd, outFd: injectFd, destIp: injectIp, destPort: opts.inject.port }], peers: [] });

  return {
    setPeers,
    stop,
    exited,
    stats: () => ({
      egress: counter(egress.stats),
      ingress: counter(ingress.stats),
      dropped: {
        notVxlan: egress.stats[STAT.notVxlan]! + ingress.stats[STAT.notVxlan]!,
        unknownPeer: ingress.stats[STAT.unknownPeer]!,
        sendErrors: egress.stats[STAT.sendErrors]! + ingress.stats[STAT.sendErrors]!,
        truncated: egress.stats[STAT.truncated]! + ingress.stats[STAT.truncated]!,
        recvErrors: egress.stats[STAT.recvErrors]! + ingress.stats[STAT.recvErrors]!,
      },
      gro: hostGro,
      loops: { egress: loopCounters(egress.stats), ingress: loopCounters(ingress.stats) },
    }),
  };
}
