#!/usr/bin/env bun
// bench/relay.ts: how fast the VXLAN relay (lib/relay, issue 17) forwards, as a markdown table: datagrams/s,
// Gbit/s received and loss for 1400-byte VXLAN-shaped datagrams at offered rates (max and fixed), with
// batches of 64, 32 and 1 datagrams per system call, against a plain Bun.udpSocket relay (one datagram in,
// one out: what the issue measured at 0.93 Gbit/s) and against no relay at all.
//   loopback: sender -> 127.0.0.1:L_PEER -> relay -> host socket 127.0.0.1:F -> receiver 127.0.0.2:F (egress),
//             peer 127.0.0.2 -> host socket -> relay -> receiver 127.0.0.3 (ingress);
//   netns:    the host socket and the receiver live in two network namespaces of our own (relaycore-a/b, a veth
//             between them, made and removed here, as root) and reach the relay by SCM_RIGHTS (fdpass.ts),
//             like the node's relay gets its host socket.
// The relay runs with UDP GRO and GSO (the default) and, for batch 64, also without (--offload both, the default;
// on / off: only that one): the senders send one datagram per message, as flannel.1 does; with GSO the relay
// sends runs, and in the netns case the run crosses the veth whole (no veth GRO needed).
// Each case runs --seconds (default 2) --runs times (default 1); the load average is printed before and after:
// the machine's cores are shared, so the numbers are a lower bound.
//
//   node_modules/.bin/bun bench/relay.ts [--seconds 2] [--runs 1] [--no-netns] [--size 1400] [--offload both|on|off]
//   node_modules/.bin/bun bench/relay.ts --give-socket PATH IP:PORT   (internal: serve one UDP socket, for netns)
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { parseArgs } from "node:util";
import { fetchSockets, serveSockets } from "../lib/relay/fdpass.ts";
import { startRelay } from "../lib/relay/relay.ts";
import { closeFd, localEndpoint, openUdp, type Endpoint } from "../lib/relay/udp.ts";
import type { GenJob } from "./relay-gen.ts";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    seconds: { type: "string", default: "2" },
    runs: { type: "string", default: "1" },
    "no-netns": { type: "boolean", default: false },
    "give-socket": { type: "string" },
    size: { type: "string", default: "1400" },
    offload: { type: "string", default: "both" },
  },
});

const SIZE = Number(values.size);
const BUF = 4 << 20;

if (values["give-socket"] !== undefined) {
  // Internal: run inside a netns (ip netns exec), hand one bound UDP socket to the bench, wait to be killed.
  const [ip, port] = positionals[0]!.split(":");
  const fd = openUdp({ ip: ip!, port: Number(port) }, { rcvbuf: BUF, sndbuf: BUF });
  serveSockets(values["give-socket"], () => ({ fds: [fd], meta: null }));
  console.log("ready");
  await new Promise(() => {});
}

const seconds = Number(values.seconds);
const offloads = ({ both: [true, false], on: [true], off: [false] } as Record<string, boolean[]>)[values.offload!];
if (offloads === undefined) {
  console.error("bench/relay.ts: --offload is both, on or off");
  process.exit(2);
}
const runs = Number(values.runs);
if (!(seconds > 0) || !Number.isInteger(runs) || runs < 1 || !Number.isInteger(SIZE) || SIZE < 22 || SIZE > 65507) {
  console.error("bench/relay.ts: --seconds must be > 0, --runs a positive integer, --size 22-65507 bytes");
  process.exit(2);
}

/** gen runs one traffic end on a Worker and resolves with its count. */
function gen(job: GenJob): { done: Promise<{ packets: number; bytes: number }>; worker: Worker } {
  const worker = new Worker(new URL("./relay-gen.ts", import.meta.url));
  const done = new Promise<{ packets: number; bytes: number }>((resolve, reject) => {
    worker.onmessage = (ev) => resolve(ev.data);
    worker.onerror = (ev) => reject(new Error(ev.message));
  });
  worker.postMessage(job);
  return { done, worker };
}

/** Row: one measured case. */
interface Row {
  path: string;
  relay: string;
  offered: string;
  sent: number;
  got: number;
  bytes: number;
  secs: number;
}

/** measure offers traffic from sendFd to `to` and counts it on recvFd. */
async function measure(sendFd: number, to: Endpoint, recvFd: number, rate: number): Promise<{ sent: number; got: number; bytes: number }> {
  const stop = new Int32Array(new SharedArrayBuffer(4));
  const rx = gen({ mode: "recv", fd: recvFd, stop });
  await Bun.sleep(50);
  const tx = gen({ mode: "send", fd: sendFd, to, size: SIZE, rate, seconds, batch: 64 });
  const sent = await tx.done;
  await Bun.sleep(300); // what is still in the socket buffers arrives
  Atomics.store(stop, 0, 1);
  const got = await rx.done;
  tx.worker.terminate();
  rx.worker.terminate();
  return { sent: sent.packets, got: got.packets, bytes: got.bytes };
}

/** Ends: the sockets of one topology. */
interface Ends {
  name: string;
  host: number; // the relay's host socket
  peerRx: number; // the peer's socket (receives egress, sends ingress)
  injectRx: number; // the node's VXLAN socket (receives ingress)
  peerIp: string;
  flannelPort: number;
}

/** relayCase measures one relay configuration in one direction. */
async function relayCase(ends: Ends, batch: number, dir: "egress" | "ingress", rate: number, offload = true): Promise<Row> {
  const relay = startRelay({ hostFd: ends.host, flannelPort: ends.flannelPort, inject: localEndpoint(ends.injectRx), batch, rcvbuf: BUF, sndbuf: BUF, gro: offload, gso: offload });
  const ports = relay.setPeers([ends.peerIp]);
  await Bun.sleep(50);
  let r;
  if (dir === "egress") {
    const src = openUdp({ ip: "127.0.0.1", port: 0 }, { sndbuf: BUF });
    r = await measure(src, { ip: "127.0.0.1", port: ports.get(ends.peerIp)! }, ends.peerRx, rate);
    closeFd(src);
  } else {
    r = await measure(ends.peerRx, localEndpoint(ends.host), ends.injectRx, rate);
  }
  const l = relay.stats().loops[dir];
  await relay.stop();
  const work = `${l.recvCalls} recvmmsg, ${l.groRuns} GRO runs, ${l.gsoSends} GSO sends`;
  return { path: ends.name, relay: `u7s relay, batch ${batch}, ${dir}, GRO/GSO ${offload ? "on" : "off"} (${work})`, offered: rateText(rate), ...r, secs: seconds };
}

/** plainCase measures a Bun.udpSocket relay (one datagram in, one out, on the main thread) in the egress direction. */
async function plainCase(ends: Ends, rate: number): Promise<Row> {
  const peer = localEndpoint(ends.peerRx);
  const out = await Bun.udpSocket({});
  const inp = await Bun.udpSocket({
    hostname: "127.0.0.1",
    socket: { data: (_s, buf) => void out.send(buf, peer.port, ends.peerIp) },
  });
  const src = openUdp({ ip: "127.0.0.1", port: 0 }, { sndbuf: BUF });
  const r = await measure(src, { ip: "127.0.0.1", port: inp.port }, ends.peerRx, rate);
  closeFd(src);
  inp.close();
  out.close();
  return { path: ends.name, relay: "plain Bun.udpSocket relay", offered: rateText(rate), ...r, secs: seconds };
}

/** directCase measures the path without a relay: sender straight to the peer's socket. */
async function directCase(ends: Ends, rate: number): Promise<Row> {
  const r = await measure(ends.host, localEndpoint(ends.peerRx).port === 0 ? localEndpoint(ends.peerRx) : { ip: ends.peerIp, port: localEndpoint(ends.peerRx).port }, ends.peerRx, rate);
  return { path: ends.name, relay: "no relay (host socket to peer)", offered: rateText(rate), ...r, secs: seconds };
}

function rateText(rate: number): string {
  return rate === 0 ? "max" : `${rate / 1e6} Mbit/s`;
}

/** loopbackEnds: the host socket on 127.0.0.1, the peer on 127.0.0.2, the node on 127.0.0.3. */
function loopbackEnds(): Ends {
  const host = openUdp({ ip: "127.0.0.1", port: 0 }, { rcvbuf: BUF, sndbuf: BUF });
  const flannelPort = localEndpoint(host).port;
  return {
    name: "loopback",
    host,
    flannelPort,
    peerIp: "127.0.0.2",
    peerRx: openUdp({ ip: "127.0.0.2", port: flannelPort }, { rcvbuf: BUF, sndbuf: BUF }),
    injectRx: openUdp({ ip: "127.0.0.3", port: 0 }, { rcvbuf: BUF }),
  };
}

const NS = ["relaycore-a", "relaycore-b"] as const;
const NS_IP = ["10.254.17.1", "10.254.17.2"] as const;

function ip(...args: string[]): void {
  const r = spawnSync("ip", args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`ip ${args.join(" ")}: ${r.stderr.trim()}`);
}

function netnsDown(): void {
  for (const ns of NS) spawnSync("ip", ["netns", "del", ns]);
}

/** netnsEnds makes relaycore-a/b with a veth and gets the host socket (in a) and the peer's socket (in b) by SCM_RIGHTS. */
async function netnsEnds(dir: string, kids: ReturnType<typeof spawn>[]): Promise<Ends> {
  netnsDown();
  for (const ns of NS) ip("netns", "add", ns);
  ip("link", "add", "rcore-a", "netns", NS[0], "type", "veth", "peer", "name", "rcore-b", "netns", NS[1]);
  for (const [i, ns] of NS.entries()) {
    const dev = i === 0 ? "rcore-a" : "rcore-b";
    ip("-n", ns, "addr", "add", `${NS_IP[i]}/24`, "dev", dev);
    ip("-n", ns, "link", "set", dev, "up");
    ip("-n", ns, "link", "set", "lo", "up");
  }
  const port = 18472;
  const fds: number[] = [];
  for (const [i, ns] of NS.entries()) {
    const path = `${dir}/give-${i}.sock`;
    const kid = spawn("ip", ["netns", "exec", ns, process.execPath, import.meta.path, "--give-socket", path, `${NS_IP[i]}:${port}`], { stdio: ["ignore", "pipe", "inherit"] });
    kids.push(kid);
    fds.push((await fetchSockets(path, 10000)).fds[0]!);
  }
  return {
    name: "two netns (veth)",
    host: fds[0]!,
    peerRx: fds[1]!,
    flannelPort: port,
    peerIp: NS_IP[1],
    injectRx: openUdp({ ip: "127.0.0.3", port: 0 }, { rcvbuf: BUF }),
  };
}

const rows: Row[] = [];
const load0 = loadavg();
const MAX = 0;
const R500 = 500e6;
for (let run = 0; run < runs; run++) {
  const lo = loopbackEnds();
  rows.push(await directCase(lo, MAX));
  for (const off of offloads) for (const rate of [MAX, R500]) rows.push(await relayCase(lo, 64, "egress", rate, off));
  for (const off of offloads) for (const rate of [MAX, R500]) rows.push(await relayCase(lo, 64, "ingress", rate, off));
  rows.push(await relayCase(lo, 32, "egress", MAX));
  for (const rate of [MAX, R500]) rows.push(await relayCase(lo, 1, "egress", rate));
  for (const rate of [MAX, R500]) rows.push(await plainCase(lo, rate));
  if (!values["no-netns"]) {
    const dir = mkdtempSync(`${tmpdir()}/relaycore-`);
    const kids: ReturnType<typeof spawn>[] = [];
    try {
      const ns = await netnsEnds(dir, kids);
      rows.push(await directCase(ns, MAX));
      for (const off of offloads) for (const rate of [MAX, R500]) rows.push(await relayCase(ns, 64, "egress", rate, off));
      for (const off of offloads) rows.push(await relayCase(ns, 64, "ingress", MAX, off));
      rows.push(await relayCase(ns, 1, "egress", MAX));
    } finally {
      kids.forEach((k) => k.kill());
      netnsDown();
      rmSync(dir, { recursive: true, force: true });
    }
  }
}
const load1 = loadavg();

console.log(`| path | relay | offered | datagrams/s | Gbit/s received | loss |`);
console.log(`|---|---|---|---:|---:|---:|`);
for (const r of rows) {
  const loss = r.sent === 0 ? 0 : Math.max(0, 1 - r.got / r.sent);
  console.log(`| ${r.path} | ${r.relay} | ${r.offered} | ${Math.round(r.got / r.secs).toLocaleString("en")} | ${((r.bytes * 8) / r.secs / 1e9).toFixed(2)} | ${(loss * 100).toFixed(1)}% |`);
}
const fmt = (l: number[]) => l.map((x) => x.toFixed(2)).join(" ");
console.log(`\n${SIZE}-byte datagrams, ${seconds} s per case, ${runs} run(s); load average before ${fmt(load0)}, after ${fmt(load1)} (${navigator.hardwareConcurrency} cores).`);
process.exit(0);
