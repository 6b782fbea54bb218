import { afterEach, describe, expect, test } from "bun:test";
import { newStats, STAT, type Route } from "../../../lib/relay/control.ts";
import { POLLIN } from "../../../lib/relay/ffi.ts";
import { drain, type DrainContext } from "../../../lib/relay/relay-worker.ts";
import { closeFd, localEndpoint, openUdp, parseIpv4, pollOne, recvFrom, RecvBatch, SendBatch, sendTo } from "../../../lib/relay/udp.ts";
import { vxlanPayload } from "../../../lib/relay/vxlan.ts";

const open: number[] = [];
function udp(ip = "127.0.0.1"): number {
  const fd = openUdp({ ip, port: 0 }, { rcvbuf: 1 << 20 });
  open.push(fd);
  return fd;
}
afterEach(() => {
  while (open.length > 0) closeFd(open.pop()!);
});

/** setup: a route from `inFd` to `dest` through `outFd`, and senders on 127.0.0.2 (a peer) and 127.0.0.4 (none). */
function setup(batch = 8, slot?: number, rounds = 8, checkPeers = true) {
  const inFd = udp();
  const outFd = udp();
  const dest = udp("127.0.0.3");
  const peer = udp("127.0.0.2");
  const stranger = udp("127.0.0.4");
  const route: Route = { inFd, outFd, destIp: parseIpv4("127.0.0.3")!, destPort: localEndpoint(dest).port };
  const ctx: DrainContext = { peers: new Set([parseIpv4("127.0.0.2")!]), checkPeers, stats: newStats(), rounds, gso: true, gsoOff: new Set() };
  const sender = new SendBatch(batch, localEndpoint(dest));
  const rb = new RecvBatch(batch, slot);
  const run = () => drain(route, sender, rb, ctx);
  const stat = (k: keyof typeof STAT) => ctx.stats[STAT[k]];
  return { inFd, outFd, dest, peer, stranger, route, ctx, run, stat, to: localEndpoint(inFd) };
}

/** received takes what is queued on fd. */
function received(fd: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  while (pollOne(fd, POLLIN, 100) !== 0) {
    const r = recvFrom(fd);
    if (typeof r !== "number") out.push(r.data);
  }
  return out;
}

const vx = (n: number, size = 50) => vxlanPayload(1, new Uint8Array(size).fill(n));

describe("drain", () => {
  test("passes VXLAN from peers, counts the rest by reason, and the bytes of what passed", () => {
    const w = setup();
    sendTo(w.peer, vx(1), w.to);
    sendTo(w.stranger, vx(2), w.to);
    sendTo(w.peer, new Uint8Array(58), w.to);
    sendTo(w.peer, vx(3, 100), w.to);
    pollOne(w.inFd, POLLIN, 1000);
    w.run();
    expect(received(w.dest)).toEqual([vx(1), vx(3, 100)]);
    expect([w.stat("packets"), w.stat("bytes"), w.stat("unknownPeer"), w.stat("notVxlan"), w.stat("truncated"), w.stat("sendErrors"), w.stat("recvErrors")]).toEqual([
      2, 58 + 108, 1, 1, 0, 0, 0,
    ]);
  });

  test("without the peer check any sender's VXLAN passes", () => {
    const w = setup(8, undefined, 8, false);
    sendTo(w.stranger, vx(2), w.to);
    pollOne(w.inFd, POLLIN, 1000);
    w.run();
    expect(received(w.dest)).toEqual([vx(2)]);
    expect(w.stat("unknownPeer")).toBe(0);
  });

  test("takes at most `rounds` batches, then leaves the rest for the next turn", () => {
    const w = setup(2, undefined, 2);
    for (let i = 0; i < 7; i++) sendTo(w.peer, vx(i), w.to);
    pollOne(w.inFd, POLLIN, 1000);
    w.run();
    expect(w.stat("packets")).toBe(4);
    w.run();
    expect(w.stat("packets")).toBe(7);
    expect(received(w.dest).map((d) => d[8])).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });

  test("a datagram longer than the slot is dropped as truncated, not sent cut", () => {
    const w = setup(4, 64);
    sendTo(w.peer, vx(1, 100), w.to);
    sendTo(w.peer, vx(2, 20), w.to);
    pollOne(w.inFd, POLLIN, 1000);
    w.run();
    expect(received(w.dest)).toEqual([vx(2, 20)]);
    expect(w.stat("truncated")).toBe(1);
  });

  test("a refused send counts errors and no bytes", () => {
    const w = setup();
    const route = { ...w.route, outFd: udp("0.0.0.0") };
    const sender = new SendBatch(8, { ip: "255.255.255.255", port: 9 }); // EACCES: no SO_BROADCAST
    sendTo(w.peer, vx(1), w.to);
    sendTo(w.peer, vx(2), w.to);
    pollOne(w.inFd, POLLIN, 1000);
    drain(route, sender, new RecvBatch(8), w.ctx);
    expect([w.stat("packets"), w.stat("bytes"), w.stat("sendErrors")]).toEqual([0, 0, 2]);
  });

  test("an empty queue is no error; a broken socket is", () => {
    const w = setup();
    w.run();
    expect(w.stat("recvErrors")).toBe(0);
    drain({ ...w.route, inFd: -1 }, new SendBatch(1, { ip: "127.0.0.1", port: 9 }), new RecvBatch(1), w.ctx);
    expect(w.stat("recvErrors")).toBe(1);
    expect(w.stat("packets")).toBe(0);
  });
});
