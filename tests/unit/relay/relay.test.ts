import { afterEach, describe, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { libc, POLLIN, SOL_UDP, UDP_GRO } from "../../../lib/relay/ffi.ts";
import { startRelay, workerUrl, type Relay, type RelayStats } from "../../../lib/relay/relay.ts";
import { closeFd, localEndpoint, openUdp, pollOne, RecvBatch, recvFrom, SendBatch, sendTo, type Endpoint } from "../../../lib/relay/udp.ts";
import { vxlanPayload } from "../../../lib/relay/vxlan.ts";

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

/** udp opens a UDP socket closed after the test. */
function udp(ip = "127.0.0.1", port = 0): number {
  const fd = openUdp({ ip, port }, { rcvbuf: 4 << 20 }); // room for a test's burst before it reads
  cleanups.push(() => closeFd(fd));
  return fd;
}

/** World: a relay on loopback: its host socket on 127.0.0.1:F, two peers 127.0.0.2 and .4 on F, the node's VXLAN socket on 127.0.0.3. */
interface World {
  relay: Relay;
  host: number;
  flannelPort: number;
  peer: number;
  peer2: number;
  node: number;
  kernel: number; // what stands for the node's kernel sending VXLAN through the steered port
  warnings: string[];
}

function world(batch?: number): World {
  const host = udp();
  const flannelPort = localEndpoint(host).port;
  const peer = udp("127.0.0.2", flannelPort);
  const peer2 = udp("127.0.0.4", flannelPort);
  const node = udp("127.0.0.3");
  const warnings: string[] = [];
  const relay = startRelay({ hostFd: host, flannelPort, inject: localEndpoint(node), batch, log: { warn: (t) => warnings.push(t), debug: () => {} } });
  cleanups.push(() => relay.stop());
  return { relay, host, flannelPort, peer, peer2, node, kernel: udp(), warnings };
}

/** receive collects n datagrams from fd (or fewer, when none comes for quietMs). */
function receive(fd: number, n: number, quietMs = 1000): { data: Uint8Array; from: Endpoint }[] {
  const got: { data: Uint8Array; from: Endpoint }[] = [];
  while (got.length < n && pollOne(fd, POLLIN, quietMs) !== 0) {
    const r = recvFrom(fd);
    if (typeof r !== "number") got.push(r);
  }
  return got;
}

/** eventually polls the relay's counters until they say what the test waits for. */
async function statsWhen(relay: Relay, ok: (s: RelayStats) => boolean): Promise<RelayStats> {
  for (let i = 0; i < 200; i++) {
    const s = relay.stats();
    if (ok(s)) return s;
    await Bun.sleep(10);
  }
  return relay.stats();
}

const vx = (n: number, size = 100) => vxlanPayload(1, new Uint8Array(size).fill(n & 255));

describe("startRelay egress", () => {
  test("VXLAN from the node to a peer's port leaves from the host socket to PEER:PORT_FLANNEL, in order", async () => {
    const w = world();
    const ports = w.relay.setPeers(["127.0.0.2"]);
    expect([...ports.keys()]).toEqual(["127.0.0.2"]);
    const to = { ip: "127.0.0.1", port: ports.get("127.0.0.2")! };
    for (let i = 0; i < 200; i++) sendTo(w.kernel, vx(i, 1400), to);
    const got = receive(w.peer, 200);
    expect(got.length).toBe(200);
    got.forEach((g, i) => {
      expect(g.data).toEqual(vx(i, 1400));
      expect(g.from).toEqual(localEndpoint(w.host));
    });
    const s = await statsWhen(w.relay, (s) => s.egress.packets === 200);
    expect(s.egress).toEqual({ packets: 200, bytes: 200 * 1408 });
    expect(s.ingress).toEqual({ packets: 0, bytes: 0 });
    expect(receive(w.peer2, 1, 50)).toEqual([]);
  });

  test("each peer has its own port; what is not VXLAN is dropped and counted", async () => {
    const w = world();
    const ports = w.relay.setPeers(["127.0.0.2", "127.0.0.4"]);
    expect(ports.get("127.0.0.2")).not.toBe(ports.get("127.0.0.4"));
    sendTo(w.kernel, new Uint8Array(100), { ip: "127.0.0.1", port: ports.get("127.0.0.2")! }); // no I flag
    sendTo(w.kernel, vx(4), { ip: "127.0.0.1", port: ports.get("127.0.0.4")! });
    expect(receive(w.peer2, 1).map((g) => g.data)).toEqual([vx(4)]);
    const s = await statsWhen(w.relay, (s) => s.dropped.notVxlan === 1 && s.egress.packets === 1);
    expect(s.dropped.notVxlan).toBe(1);
    expect(s.egress.packets).toBe(1);
    expect(receive(w.peer, 1, 50)).toEqual([]);
  });

  test("a send the kernel refuses is counted, the loop goes on", async () => {
    const w = world();
    const ports = w.relay.setPeers(["255.255.255.255", "127.0.0.2"]); // broadcast without SO_BROADCAST: EACCES
    sendTo(w.kernel, vx(1), { ip: "127.0.0.1", port: ports.get("255.255.255.255")! });
    const s = await statsWhen(w.relay, (s) => s.dropped.sendErrors === 1);
    expect(s.dropped.sendErrors).toBe(1);
    sendTo(w.kernel, vx(2), { ip: "127.0.0.1", port: ports.get("127.0.0.2")! });
    expect(receive(w.peer, 1).length).toBe(1);
  });

  test("batch 1 relays too", async () => {
    const w = world(1);
    const ports = w.relay.setPeers(["127.0.0.2"]);
    for (let i = 0; i < 20; i++) sendTo(w.kernel, vx(i), { ip: "127.0.0.1", port: ports.get("127.0.0.2")! });
    expect(receive(w.peer, 20).map((g) => g.data[8])).toEqual([...Array(20).keys()]);
  });
});

describe("startRelay ingress", () => {
  test("VXLAN from a peer reaches the node's VXLAN socket; from anyone else, or not VXLAN, it is dropped", async () => {
    const w = world();
    w.relay.setPeers(["127.0.0.2"]);
    const hostEp = localEndpoint(w.host);
    sendTo(w.peer2, vx(9), hostEp); // 127.0.0.4: no peer
    sendTo(w.peer, new Uint8Array(30), hostEp); // a peer, but no VXLAN
    for (let i = 0; i < 100; i++) sendTo(w.peer, vx(i), hostEp);
    const got = receive(w.node, 100);
    expect(got.map((g) => g.data[8])).toEqual([...Array(100).keys()]);
    const s = await statsWhen(w.relay, (s) => s.ingress.packets === 100 && s.dropped.unknownPeer === 1 && s.dropped.notVxlan === 1);
    expect(s.ingress).toEqual({ packets: 100, bytes: 100 * 108 });
    expect(s.dropped).toEqual({ notVxlan: 1, unknownPeer: 1, sendErrors: 0, truncated: 0, recvErrors: 0 });
    expect(receive(w.node, 1, 50)).toEqual([]);
  });

  test("before any peer is set nothing comes in", async () => {
    const w = world();
    sendTo(w.peer, vx(1), localEndpoint(w.host));
    const s = await statsWhen(w.relay, (s) => s.dropped.unknownPeer === 1);
    expect(s.dropped.unknownPeer).toBe(1);
    expect(receive(w.node, 1, 50)).toEqual([]);
  });
});

describe("setPeers", () => {
  test("a peer that stays keeps its port; a removed peer's socket closes and its traffic stops both ways", async () => {
    const w = world();
    const first = w.relay.setPeers(["127.0.0.2", "127.0.0.4"]);
    const second = w.relay.setPeers(["127.0.0.4", "127.0.0.5", "127.0.0.4"]);
    expect([...second.keys()].sort()).toEqual(["127.0.0.4", "127.0.0.5"]);
    expect(second.get("127.0.0.4")).toBe(first.get("127.0.0.4")!);
    // The removed peer's port is closed once the loop has let go of it: binding it again works.
    const oldPort = first.get("127.0.0.2")!;
    let rebound: number | undefined;
    for (let i = 0; i < 200 && rebound === undefined; i++) {
      try {
        rebound = openUdp({ ip: "127.0.0.1", port: oldPort });
      } catch {
        await Bun.sleep(10);
      }
    }
    expect(rebound).toBeDefined();
    closeFd(rebound!);
    sendTo(w.peer, vx(1), localEndpoint(w.host)); // 127.0.0.2 is no peer any more
    sendTo(w.peer2, vx(2), localEndpoint(w.host));
    expect(receive(w.node, 2, 300).map((g) => g.data[8])).toEqual([2]);
    expect((await statsWhen(w.relay, (s) => s.dropped.unknownPeer === 1)).dropped.unknownPeer).toBe(1);
  });

  test("a bad address is a usage error naming it, and changes nothing", () => {
    const w = world();
    const before = w.relay.setPeers(["127.0.0.2"]);
    let err: { message: string; exitCode: number } | undefined;
    try {
      w.relay.setPeers(["127.0.0.4", "fe80::1", "10.0.0"]);
    } catch (e) {
      err = e as typeof err;
    }
    expect(err?.message).toBe(`invalid relay peer "fe80::1", "10.0.0": IPv4 addresses only`);
    expect(err?.exitCode).toBe(2);
    expect(w.relay.setPeers(["127.0.0.2"])).toEqual(before);
  });
});

describe("startRelay options and stop", () => {
  test.each([0, 65536, 1.5])("flannel port %p is a usage error (exit 2)", (port) => {
    expect(() => startRelay({ hostFd: 0, flannelPort: port, inject: { ip: "127.0.0.1", port: 1 } })).toThrow(
      `invalid Flannel port ${port}: valid are 1-65535`,
    );
    try {
      startRelay({ hostFd: 0, flannelPort: port, inject: { ip: "127.0.0.1", port: 1 } });
    } catch (e) {
      expect((e as { exitCode: number }).exitCode).toBe(2);
    }
  });

  test("a bad inject address is a usage error (exit 2)", () => {
    try {
      startRelay({ hostFd: 0, flannelPort: 1, inject: { ip: "::1", port: 1 } });
      throw new Error("no error");
    } catch (e) {
      expect((e as { exitCode: number }).exitCode).toBe(2);
    }
  });

  test("a data loop that fails ends the relay: exited says why, the log too", async () => {
    const host = udp();
    const warnings: string[] = [];
    // a batch too large to allocate: the loop throws as it starts
    const r = startRelay({ hostFd: host, flannelPort: 9, inject: { ip: "127.0.0.1", port: 9 }, batch: 2 ** 40, log: { warn: (t) => warnings.push(t), debug: () => {} } });
    cleanups.push(() => r.stop());
    const why = await r.exited;
    expect(why).toMatch(/^relay loop failed: .+/);
    expect(warnings[0]).toBe(why!);
  });

  test("a failing loop without a log still settles exited", async () => {
    const r = startRelay({ hostFd: udp(), flannelPort: 9, inject: { ip: "127.0.0.1", port: 9 }, batch: 2 ** 40 });
    cleanups.push(() => r.stop());
    expect(await r.exited).toMatch(/^relay loop failed: /);
  });

  test("start and stop leave no descriptor open", async () => {
    const host = udp();
    const before = readdirSync("/proc/self/fd").length;
    const r = startRelay({ hostFd: host, flannelPort: 9, inject: { ip: "127.0.0.1", port: 9 } });
    r.setPeers(["127.0.0.2", "127.0.0.4"]);
    r.setPeers(["127.0.0.4"]);
    await r.stop();
    // A terminated Worker's own event loop descriptors close a moment later (an earlier test's too, so there
    // may be fewer than before): wait for them, not for a leak.
    let now = readdirSync("/proc/self/fd").length;
    for (let i = 0; i < 100 && now > before; i++) {
      await Bun.sleep(20);
      now = readdirSync("/proc/self/fd").length;
    }
    expect(now).toBeLessThanOrEqual(before);
  });

  test("setPeers says what it relays for in the debug log", () => {
    const host = udp();
    const debug: string[] = [];
    const r = startRelay({ hostFd: host, flannelPort: 9, inject: { ip: "127.0.0.1", port: 9 }, log: { warn: () => {}, debug: (t) => debug.push(t) } });
    cleanups.push(() => r.stop());
    r.setPeers(["127.0.0.2", "127.0.0.4"]);
    r.setPeers([]);
    expect(debug).toEqual(["relay peers: 127.0.0.2, 127.0.0.4", "relay peers: none"]);
  });

  test("refused sends of both loops add up", async () => {
    const host = openUdp({ ip: "0.0.0.0", port: 0 });
    cleanups.push(() => closeFd(host));
    const flannelPort = localEndpoint(host).port;
    // egress to a broadcast peer and ingress to a broadcast node address: EACCES both ways (no SO_BROADCAST)
    const r = startRelay({ hostFd: host, flannelPort, inject: { ip: "255.255.255.255", port: 9 } });
    cleanups.push(() => r.stop());
    const ports = r.setPeers(["255.255.255.255", "127.0.0.2"]);
    sendTo(udp(), vx(1), { ip: "127.0.0.1", port: ports.get("255.255.255.255")! });
    sendTo(udp("127.0.0.2"), vx(2), { ip: "127.0.0.1", port: flannelPort });
    const s = await statsWhen(r, (s) => s.dropped.sendErrors === 2);
    expect(s.dropped.sendErrors).toBe(2);
  });

  test("flannel ports 1 and 65535 are valid; a bad inject address is a usage error", async () => {
    expect(() => startRelay({ hostFd: 0, flannelPort: 1, inject: { ip: "node", port: 1 } })).toThrow(
      `invalid inject address "node": an IPv4 address`,
    );
    for (const flannelPort of [1, 65535]) {
      const r = startRelay({ hostFd: udp(), flannelPort, inject: { ip: "127.0.0.1", port: 1 } });
      await r.stop();
    }
  });

  test("stop ends the loops, closes the relay's sockets but not the host socket, and settles exited", async () => {
    const w = world();
    const ports = w.relay.setPeers(["127.0.0.2"]);
    await w.relay.stop();
    await w.relay.stop(); // twice is fine
    expect(await w.relay.exited).toBeUndefined();
    expect(localEndpoint(w.host).port).toBe(w.flannelPort); // still open
    const again = openUdp({ ip: "127.0.0.1", port: ports.get("127.0.0.2")! }); // the egress port is free again
    closeFd(again);
    sendTo(w.peer, vx(1), localEndpoint(w.host));
    expect(receive(w.node, 1, 100)).toEqual([]);
    expect(w.warnings).toEqual([]);
  });

  test("the host socket after a stop serves a new relay (a restarted node gets the same socket)", async () => {
    const w = world();
    w.relay.setPeers(["127.0.0.2"]);
    await w.relay.stop();
    sendTo(w.peer, vx(7), localEndpoint(w.host)); // waits in the host socket's buffer
    const r2 = startRelay({ hostFd: w.host, flannelPort: w.flannelPort, inject: localEndpoint(w.node) });
    cleanups.push(() => r2.stop());
    r2.setPeers(["127.0.0.2"]);
    expect(receive(w.node, 1).map((g) => g.data[8])).toEqual([7]);
  });

  test("custom egress address", async () => {
    const host = udp();
    const peer = udp("127.0.0.2", localEndpoint(host).port);
    const r = startRelay({ hostFd: host, flannelPort: localEndpoint(host).port, inject: { ip: "127.0.0.3", port: 9 }, egressIp: "127.0.0.9" });
    cleanups.push(() => r.stop());
    const port = r.setPeers(["127.0.0.2"]).get("127.0.0.2")!;
    sendTo(udp(), vx(3), { ip: "127.0.0.9", port });
    expect(receive(peer, 1).length).toBe(1);
  });

  test("workerUrl: next to relay.ts, or the compiled binary's entry point", () => {
    expect(workerUrl("file:///src/lib/relay/relay.ts")).toBe("file:///src/lib/relay/relay-worker.ts");
    expect(workerUrl("file:///$bunfs/root/chunk-abc.js")).toBe("./lib/relay/relay-worker.ts");
    expect(workerUrl()).toBe(new URL("../../../lib/relay/relay-worker.ts", import.meta.url).href);
  });

  test("a RecvBatch sized like the relay's takes a 65507-byte datagram whole", () => {
    const rx = udp();
    const big = vxlanPayload(1, new Uint8Array(65499).fill(3));
    expect(sendTo(udp(), big, localEndpoint(rx))).toBe(65507);
    pollOne(rx, POLLIN, 1000);
    const rb = new RecvBatch(1);
    expect(rb.recv(rx)).toBe(1);
    expect(rb.length(0)).toBe(65507);
    expect(rb.truncated(0)).toBe(false);
  });
});

/** groOf reads a socket's UDP_GRO option (udp(7)). */
function groOf(fd: number): number {
  const v = new Int32Array([7]);
  expect(libc.getsockopt(fd, SOL_UDP, UDP_GRO, v, new Uint32Array([4]))).toBe(0);
  return v[0]!;
}

describe("startRelay with UDP GRO and GSO", () => {
  test("GRO is on on the host socket while the relay reads it, off after stop (for a reader that knows no runs)", async () => {
    const w = world();
    expect(groOf(w.host)).toBe(1);
    expect(w.relay.stats().gro).toBe(true);
    await w.relay.stop();
    expect(groOf(w.host)).toBe(0);
  });

  test("gro off leaves the host socket alone and says so", async () => {
    const host = udp();
    const r = startRelay({ hostFd: host, flannelPort: localEndpoint(host).port, inject: { ip: "127.0.0.3", port: 9 }, gro: false });
    cleanups.push(() => r.stop());
    const port = r.setPeers(["127.0.0.2"]).get("127.0.0.2")!;
    expect(groOf(host)).toBe(0);
    expect(r.stats().gro).toBe(false);
    expect(port).toBeGreaterThan(0);
  });

  test("a peer's GSO run comes in as one GRO run and reaches the node datagram by datagram; the loops count their work", async () => {
    const w = world();
    w.relay.setPeers(["127.0.0.2"]);
    const hold = new RecvBatch(1, 20 * 1408);
    for (let i = 0; i < 20; i++) hold.buf.set(vx(i, 1400), i * 1408);
    const sb = new SendBatch(64, localEndpoint(w.host));
    sb.add(hold.bufAddr, 20 * 1408, 1408);
    expect(sb.flush(w.peer).gsoSends).toBe(1);
    expect(receive(w.node, 20).map((g) => g.data)).toEqual(Array.from({ length: 20 }, (_, i) => vx(i, 1400)));
    const s = await statsWhen(w.relay, (s) => s.ingress.packets === 20);
    expect(s.loops.ingress).toMatchObject({ datagrams: 20, groRuns: 1, gsoSends: 1, gsoFallbacks: 0 });
    expect(s.loops.ingress.wakeups).toBeGreaterThanOrEqual(1);
    expect(s.loops.ingress.recvCalls).toBeGreaterThanOrEqual(1);
    expect(s.loops.egress).toMatchObject({ recvCalls: 0, datagrams: 0, groRuns: 0, gsoSends: 0, gsoFallbacks: 0 }); // its wake-ups: new orders only
  });

  test("the egress sockets read GRO runs too (gro on), and single datagrams with gro off", async () => {
    for (const gro of [true, false]) {
      const host = udp();
      const flannelPort = localEndpoint(host).port;
      const peer = udp("127.0.0.2", flannelPort);
      const r = startRelay({ hostFd: host, flannelPort, inject: { ip: "127.0.0.3", port: 9 }, gro });
      cleanups.push(() => r.stop());
      const port = r.setPeers(["127.0.0.2"]).get("127.0.0.2")!;
      const hold = new RecvBatch(1, 10 * 1408);
      for (let i = 0; i < 10; i++) hold.buf.set(vx(i, 1400), i * 1408);
      const sb = new SendBatch(64, { ip: "127.0.0.1", port });
      sb.add(hold.bufAddr, 10 * 1408, 1408);
      sb.flush(udp());
      expect(receive(peer, 10).map((g) => g.data)).toEqual(Array.from({ length: 10 }, (_, i) => vx(i, 1400)));
      const s = await statsWhen(r, (s) => s.egress.packets === 10);
      expect([gro, s.loops.egress.groRuns, s.loops.egress.datagrams]).toEqual([gro, gro ? 1 : 0, 10]);
    }
  });

  test("gso off: the same run leaves one datagram per message", async () => {
    const host = udp();
    const flannelPort = localEndpoint(host).port;
    const peer = udp("127.0.0.2", flannelPort);
    const node = udp("127.0.0.3");
    const r = startRelay({ hostFd: host, flannelPort, inject: localEndpoint(node), gso: false });
    cleanups.push(() => r.stop());
    r.setPeers(["127.0.0.2"]);
    for (let i = 0; i < 10; i++) sendTo(peer, vx(i, 1400), localEndpoint(host));
    expect(receive(node, 10)).toHaveLength(10);
    const s = await statsWhen(r, (s) => s.ingress.packets === 10);
    expect(s.loops.ingress.gsoSends).toBe(0);
    expect(s.loops.ingress.datagrams).toBe(10);
  });
});
