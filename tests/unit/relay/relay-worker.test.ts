import { afterEach, describe, expect, test } from "bun:test";
import { CTL, newControl, newStats, STAT, writeConfig, type Route } from "../../../lib/relay/control.ts";
import { EFD_CLOEXEC, EFD_NONBLOCK, libc, POLLIN } from "../../../lib/relay/ffi.ts";
import { drain, newLoop, runLoop, type DrainContext } from "../../../lib/relay/relay-worker.ts";
import { closeFd, localEndpoint, openUdp, parseIpv4, pollOne, recvFrom, RecvBatch, SendBatch, sendTo, setGro } from "../../../lib/relay/udp.ts";
import { vxlanPayload } from "../../../lib/relay/vxlan.ts";

const open: number[] = [];
function udp(ip = "127.0.0.1"): number {
  const fd = openUdp({ ip, port: 0 }, { rcvbuf: 4 << 20 });
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
  while (pollOne(fd, POLLIN, 20) !== 0) {
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

/** runOf is n VXLAN payloads of `size` bytes each (the last `last` bytes), back to back, with their first inner byte i. */
function runOf(n: number, size: number, last = size): Uint8Array[] {
  return Array.from({ length: n }, (_, i) => vx(i + 1, (i === n - 1 ? last : size) - 8));
}

/** gsoSend sends datagrams (all but the last of one size) from fd to `to` as ONE GSO message; a GRO reader gets them as one run. */
function gsoSend(fd: number, parts: Uint8Array[], to: { ip: string; port: number }): void {
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    all.set(p, off);
    off += p.length;
  }
  const hold = new RecvBatch(1, all.length);
  hold.buf.set(all);
  const sb = new SendBatch(64, to);
  expect(sb.add(hold.bufAddr, all.length, parts[0]!.length)).toBe(true);
  expect(sb.flush(fd)).toMatchObject({ sent: parts.length, errors: 0 });
}

/** SO_NO_CHECK (socket(7)): the kernel then refuses GSO sends on the socket (EINVAL). */
const SO_NO_CHECK = 11;

describe("drain with UDP GRO and GSO", () => {
  test("a GRO run from a peer is checked datagram by datagram and leaves as one GSO send; the receiver gets each datagram", () => {
    const w = setup(64);
    setGro(w.inFd, true);
    const parts = runOf(10, 1000, 300);
    gsoSend(w.peer, parts, w.to);
    pollOne(w.inFd, POLLIN, 1000);
    w.run();
    expect(received(w.dest)).toEqual(parts);
    expect(["packets", "bytes", "datagrams", "groRuns", "gsoSends", "recvCalls", "gsoFallbacks"].map((k) => w.stat(k as keyof typeof STAT))).toEqual([
      10, 9300, 10, 1, 1, 1, 0,
    ]);
  });

  test("a bad datagram inside a run cuts it: the good ones before and after still go, in order; the bad is counted", () => {
    const w = setup(64);
    setGro(w.inFd, true);
    const parts = runOf(6, 500);
    parts[2] = new Uint8Array(500); // no I flag: not VXLAN
    parts[5] = new Uint8Array(500);
    gsoSend(w.peer, parts, w.to);
    pollOne(w.inFd, POLLIN, 1000);
    w.run();
    expect(received(w.dest)).toEqual([0, 1, 3, 4].map((i) => parts[i]!));
    expect([w.stat("packets"), w.stat("notVxlan"), w.stat("datagrams"), w.stat("groRuns"), w.stat("gsoSends")]).toEqual([4, 2, 6, 1, 1]); // the good pieces are of one size: they join again in one send
  });

  test("a run whose last, shorter datagram is too short for VXLAN: only that one is dropped", () => {
    const w = setup(64);
    setGro(w.inFd, true);
    const parts = [...runOf(3, 400), new Uint8Array(21).fill(8)];
    gsoSend(w.peer, parts, w.to);
    pollOne(w.inFd, POLLIN, 1000);
    w.run();
    expect(received(w.dest)).toEqual(parts.slice(0, 3));
    expect([w.stat("packets"), w.stat("notVxlan"), w.stat("datagrams")]).toEqual([3, 1, 4]);
  });

  test("a run from a stranger is dropped whole, each datagram counted", () => {
    const w = setup(64);
    setGro(w.inFd, true);
    gsoSend(w.stranger, runOf(5, 300), w.to);
    pollOne(w.inFd, POLLIN, 1000);
    w.run();
    expect(received(w.dest)).toEqual([]);
    expect([w.stat("unknownPeer"), w.stat("datagrams"), w.stat("packets")]).toEqual([5, 5, 0]);
  });

  test("a run that ends good after a bad datagram, behind another message in the batch: the tail goes from the right place", () => {
    const w = setup(64);
    setGro(w.inFd, true);
    sendTo(w.peer, vx(9, 50), w.to); // message 0 of the batch: the run below is message 1
    const parts = runOf(5, 300);
    parts[1] = new Uint8Array(300);
    gsoSend(w.peer, parts, w.to);
    pollOne(w.inFd, POLLIN, 1000);
    w.run();
    expect(received(w.dest)).toEqual([vx(9, 50), ...[0, 2, 3, 4].map((i) => parts[i]!)]);
    expect([w.stat("packets"), w.stat("notVxlan"), w.stat("bytes")]).toEqual([5, 1, 58 + 4 * 300]);
  });

  test.each([
    [4, "exactly two batches' worth goes in two pieces, nothing more"],
    [5, "longer than the send batch goes in pieces the batch holds (2 + 2 + a lone one)"],
  ])("a run of %d datagrams, batch 2: %s", (n) => {
    const w = setup(2);
    setGro(w.inFd, true);
    const parts = runOf(n, 200);
    gsoSend(w.peer, parts, w.to);
    pollOne(w.inFd, POLLIN, 1000);
    w.run();
    expect(received(w.dest)).toEqual(parts);
    expect([w.stat("packets"), w.stat("gsoSends"), w.stat("notVxlan")]).toEqual([n, 2, 0]);
  });

  test("single datagrams of one size leave as GSO sends too (no GRO on the way in); ctx.gso off sends one per message", () => {
    const w = setup(16);
    for (let i = 0; i < 6; i++) sendTo(w.peer, vx(i, 92), w.to);
    pollOne(w.inFd, POLLIN, 1000);
    w.run();
    expect(received(w.dest)).toEqual(Array.from({ length: 6 }, (_, i) => vx(i, 92)));
    expect([w.stat("packets"), w.stat("gsoSends"), w.stat("groRuns"), w.stat("datagrams")]).toEqual([6, 1, 0, 6]);
    w.ctx.gso = false;
    for (let i = 0; i < 6; i++) sendTo(w.peer, vx(i, 92), w.to);
    pollOne(w.inFd, POLLIN, 1000);
    w.run();
    expect(received(w.dest)).toHaveLength(6);
    expect([w.stat("packets"), w.stat("gsoSends")]).toEqual([12, 1]);
  });

  test("an out socket that refuses GSO: everything still goes, the refusal is counted once and remembered for that socket", () => {
    const w = setup(16);
    expect(libc.setsockopt(w.outFd, 1, SO_NO_CHECK, new Int32Array([1]), 4)).toBe(0);
    for (let i = 0; i < 4; i++) sendTo(w.peer, vx(i, 92), w.to);
    pollOne(w.inFd, POLLIN, 1000);
    w.run();
    expect(received(w.dest)).toEqual(Array.from({ length: 4 }, (_, i) => vx(i, 92)));
    expect([w.stat("packets"), w.stat("gsoFallbacks"), w.stat("gsoSends"), w.stat("sendErrors")]).toEqual([4, 1, 0, 0]);
    expect(w.ctx.gsoOff.has(w.outFd)).toBe(true);
    for (let i = 0; i < 4; i++) sendTo(w.peer, vx(i, 92), w.to);
    pollOne(w.inFd, POLLIN, 1000);
    w.run();
    expect(received(w.dest)).toHaveLength(4);
    expect([w.stat("packets"), w.stat("gsoFallbacks")]).toEqual([8, 1]);
  });

  test("a truncated run is dropped, each datagram the slot held counted", () => {
    const w = setup(4, 2048);
    setGro(w.inFd, true);
    gsoSend(w.peer, runOf(4, 1000), w.to);
    pollOne(w.inFd, POLLIN, 1000);
    w.run();
    expect(received(w.dest)).toEqual([]);
    expect([w.stat("truncated"), w.stat("packets")]).toEqual([3, 0]); // the datagrams the slot held (2048 bytes of 1000-byte segments)
  });

  test("an empty datagram is not VXLAN", () => {
    const w = setup();
    sendTo(w.peer, new Uint8Array(0), w.to);
    pollOne(w.inFd, POLLIN, 1000);
    w.run();
    expect([w.stat("notVxlan"), w.stat("datagrams"), w.stat("packets")]).toEqual([1, 1, 0]);
  });
});

/** loopWorld: a loop stepped on this thread, its wake-up eventfd, and two routes' sockets (peer 127.0.0.2). */
function loopWorld(init: { batch?: number; gso?: boolean; rounds?: number } = {}) {
  const wakeFd = libc.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  open.push(wakeFd);
  const ctl = newControl(wakeFd);
  const stats = newStats();
  const loop = newLoop({ ctl, stats, batch: init.batch ?? 8, checkPeers: true, gso: init.gso, rounds: init.rounds });
  const ins = [udp(), udp()];
  const out = udp();
  const dests = [udp("127.0.0.3"), udp("127.0.0.5")];
  const peer = udp("127.0.0.2");
  const stranger = udp("127.0.0.4");
  const routes: Route[] = ins.map((inFd, i) => ({ inFd, outFd: out, destIp: parseIpv4(localEndpoint(dests[i]!).ip)!, destPort: localEndpoint(dests[i]!).port }));
  const wake = () => libc.write(wakeFd, new BigUint64Array([1n]), 8);
  const stat = (k: keyof typeof STAT) => stats[STAT[k]];
  return { ctl, stats, loop, ins, out, dests, peer, stranger, routes, wake, stat };
}

describe("newLoop: one data loop, stepped", () => {
  test("orders are applied and acknowledged; ready routes are relayed, each to its own destination; a wake-up is read", () => {
    const w = loopWorld();
    expect(w.loop.step(0)).toBe(0); // nothing configured, nothing ready
    const seq = writeConfig(w.ctl, { routes: w.routes, peers: [parseIpv4("127.0.0.2")!] });
    expect(Atomics.load(w.ctl, CTL.ack)).toBe(0);
    expect(w.loop.step(0)).toBe(0);
    expect(Atomics.load(w.ctl, CTL.ack)).toBe(seq);
    sendTo(w.peer, vx(1), localEndpoint(w.ins[1]!));
    expect(w.loop.step(1000)).toBe(1);
    expect(received(w.dests[1]!)).toEqual([vx(1)]);
    expect(received(w.dests[0]!)).toEqual([]);
    sendTo(w.peer, vx(2), localEndpoint(w.ins[0]!));
    sendTo(w.stranger, vx(3), localEndpoint(w.ins[0]!));
    expect(w.loop.step(1000)).toBe(1);
    expect(received(w.dests[0]!)).toEqual([vx(2)]);
    expect([w.stat("wakeups"), w.stat("packets"), w.stat("unknownPeer")]).toEqual([2, 2, 1]);
    w.wake();
    expect(w.loop.step(1000)).toBe(1);
    expect(w.stat("wakeups")).toBe(3);
    expect(w.loop.step(0)).toBe(0); // the eventfd was read: no second wake-up
    expect(w.stat("recvCalls")).toBe(2); // only ready routes were read
  });

  test("new orders replace the old: other peers, fewer routes (a dropped route's last poll result is not read)", () => {
    const w = loopWorld();
    writeConfig(w.ctl, { routes: w.routes, peers: [parseIpv4("127.0.0.2")!] });
    sendTo(w.peer, vx(1), localEndpoint(w.ins[1]!));
    expect(w.loop.step(1000)).toBe(1); // route 1's slot now says POLLIN
    expect(received(w.dests[1]!)).toEqual([vx(1)]);
    const seq = writeConfig(w.ctl, { routes: [w.routes[0]!], peers: [parseIpv4("127.0.0.4")!] });
    sendTo(w.stranger, vx(4), localEndpoint(w.ins[0]!));
    sendTo(w.peer, vx(5), localEndpoint(w.ins[0]!));
    sendTo(w.stranger, vx(6), localEndpoint(w.ins[1]!)); // a route no longer read
    pollOne(w.ins[0]!, POLLIN, 1000);
    expect(w.loop.step(1000)).toBe(1);
    expect(Atomics.load(w.ctl, CTL.ack)).toBe(seq);
    expect(received(w.dests[0]!)).toEqual([vx(4)]);
    expect(received(w.dests[1]!)).toEqual([]);
    expect(w.stat("unknownPeer")).toBe(1);
  });

  test("a socket's GSO refusal is remembered until new orders come (their descriptors may be new)", () => {
    const w = loopWorld();
    expect(libc.setsockopt(w.out, 1, 11, new Int32Array([1]), 4)).toBe(0); // SO_NO_CHECK: GSO refused
    writeConfig(w.ctl, { routes: w.routes, peers: [parseIpv4("127.0.0.2")!] });
    const burst = () => {
      for (let i = 0; i < 3; i++) sendTo(w.peer, vx(i), localEndpoint(w.ins[0]!));
      pollOne(w.ins[0]!, POLLIN, 1000);
      w.loop.step(1000);
      expect(received(w.dests[0]!)).toHaveLength(3);
    };
    burst();
    burst();
    expect(w.stat("gsoFallbacks")).toBe(1);
    writeConfig(w.ctl, { routes: w.routes, peers: [parseIpv4("127.0.0.2")!] });
    burst();
    expect([w.stat("gsoFallbacks"), w.stat("packets")]).toEqual([2, 9]);
  });

  test("defaults: GSO on, 8 rounds of a batch per turn; gso false and other rounds as asked", () => {
    const go = (w: ReturnType<typeof loopWorld>) => {
      writeConfig(w.ctl, { routes: w.routes, peers: [parseIpv4("127.0.0.2")!] });
      for (let i = 0; i < 30; i++) sendTo(w.peer, vx(i), localEndpoint(w.ins[0]!));
      pollOne(w.ins[0]!, POLLIN, 1000);
      w.loop.step(1000);
      return [w.stat("packets"), w.stat("gsoSends")];
    };
    expect(go(loopWorld({ batch: 2 }))).toEqual([16, 8]);
    expect(go(loopWorld({ batch: 2, gso: false, rounds: 3 }))).toEqual([6, 0]);
  });

  test("runLoop returns at once when told to stop", () => {
    const w = loopWorld();
    Atomics.store(w.ctl, CTL.stop, 1);
    runLoop({ ctl: w.ctl, stats: w.stats, batch: 1, checkPeers: true });
    expect(w.stat("wakeups")).toBe(0);
  });
});
