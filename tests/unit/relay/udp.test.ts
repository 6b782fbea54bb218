import { afterEach, describe, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { libc, POLLIN, SO_RCVBUF, SO_SNDBUF, SOL_UDP, UDP_GRO, UDP_MAX_PAYLOAD, UDP_MAX_SEGMENTS } from "../../../lib/relay/ffi.ts";
import {
  closeFd, errnoName, formatIpv4, getIntOption, localEndpoint, openUdp, parseIpv4, pollOne, readSockaddrIn, RecvBatch,
  recvFrom, SendBatch, sendTo, setGro, setIntOption, sockaddrIn,
} from "../../../lib/relay/udp.ts";

const open: number[] = [];
/** udp opens a loopback socket closed after the test. */
function udp(ip = "127.0.0.1", port = 0, opts = {}): number {
  const fd = openUdp({ ip, port }, opts);
  open.push(fd);
  return fd;
}
afterEach(() => {
  while (open.length > 0) closeFd(open.pop()!);
});

/** waitReadable waits until a datagram is queued on fd (the loopback delivers at once; this only guards). */
function waitReadable(fd: number): void {
  expect(pollOne(fd, POLLIN, 2000) & POLLIN).toBe(POLLIN);
}

describe("IPv4 text", () => {
  test.each([
    ["127.0.0.1", 0x7f000001],
    ["0.0.0.0", 0],
    ["255.255.255.255", 0xffffffff],
    ["192.168.1.20", 0xc0a80114],
  ])("parseIpv4(%s) and back", (ip, n) => {
    expect(parseIpv4(ip)).toBe(n);
    expect(formatIpv4(n)).toBe(ip);
  });

  test.each(["", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.256", "a.b.c.d", " 1.2.3.4", "1.2.3.4 ", "1..3.4", "1234.1.1.1", "::1"])(
    "parseIpv4(%p) is no address",
    (ip) => expect(parseIpv4(ip)).toBeUndefined(),
  );
});

describe("struct sockaddr_in (ip(7))", () => {
  test("family in host order, port and address in network order, zero padding", () => {
    const sa = sockaddrIn({ ip: "10.1.2.3", port: 8472 }, new Uint8Array(16).fill(0xee));
    expect([...sa]).toEqual([2, 0, 0x21, 0x18, 10, 1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0]);
    expect(readSockaddrIn(sa)).toEqual({ ip: "10.1.2.3", port: 8472 });
  });

  test("readSockaddrIn at an offset", () => {
    const b = new Uint8Array(32);
    sockaddrIn({ ip: "1.2.3.4", port: 65535 }, b.subarray(16));
    expect(readSockaddrIn(b, 16)).toEqual({ ip: "1.2.3.4", port: 65535 });
  });

  test.each([
    [{ ip: "1.2.3", port: 1 }, /invalid IPv4 address "1.2.3"/],
    [{ ip: "1.2.3.4", port: -1 }, /invalid UDP port -1: valid are 0-65535/],
    [{ ip: "1.2.3.4", port: 65536 }, /invalid UDP port 65536/],
    [{ ip: "1.2.3.4", port: 1.5 }, /invalid UDP port 1.5/],
  ])("bad input %p is a usage error", (ep, msg) => {
    let err: { message: string; exitCode: number } | undefined;
    try {
      sockaddrIn(ep);
    } catch (e) {
      err = e as typeof err;
    }
    expect(err?.message).toMatch(msg);
    expect(err?.exitCode).toBe(2);
  });

  test("ports 0 and 65535 are valid", () => {
    expect(readSockaddrIn(sockaddrIn({ ip: "1.2.3.4", port: 0 })).port).toBe(0);
    expect(readSockaddrIn(sockaddrIn({ ip: "1.2.3.4", port: 65535 })).port).toBe(65535);
  });
});

describe("errnoName", () => {
  test("every errno named (errno(3), asm-generic/errno*.h), others as numbers", () => {
    const want: [number, string][] = [
      [1, "EPERM"], [2, "ENOENT"], [4, "EINTR"], [9, "EBADF"], [11, "EAGAIN"], [13, "EACCES"], [22, "EINVAL"], [24, "EMFILE"],
      [90, "EMSGSIZE"], [98, "EADDRINUSE"], [99, "EADDRNOTAVAIL"], [101, "ENETUNREACH"], [104, "ECONNRESET"],
      [105, "ENOBUFS"], [110, "ETIMEDOUT"], [111, "ECONNREFUSED"], [4242, "errno 4242"], [0, "errno 0"],
    ];
    expect(want.map(([e]) => [e, errnoName(e)])).toEqual(want);
  });
});

describe("openUdp", () => {
  test("binds the address asked for; port 0 takes a free one", () => {
    const fd = udp("127.0.0.1", 0);
    const ep = localEndpoint(fd);
    expect(ep.ip).toBe("127.0.0.1");
    expect(ep.port).toBeGreaterThan(0);
    const fd2 = udp("127.0.0.2", ep.port);
    expect(localEndpoint(fd2)).toEqual({ ip: "127.0.0.2", port: ep.port });
  });

  test("buffer sizes are set (socket(7): the kernel reports twice the size asked)", () => {
    const fd = udp("127.0.0.1", 0, { rcvbuf: 65536, sndbuf: 81920 });
    expect(getIntOption(fd, SO_RCVBUF)).toBe(2 * 65536);
    expect(getIntOption(fd, SO_SNDBUF)).toBe(2 * 81920);
    setIntOption(fd, SO_RCVBUF, 100000);
    expect(getIntOption(fd, SO_RCVBUF)).toBe(200000);
  });

  test("without options the kernel's default buffer sizes stay", () => {
    const plain = libc.socket(2, 2, 0);
    const fd = udp();
    expect(getIntOption(fd, SO_SNDBUF)).toBe(getIntOption(plain, SO_SNDBUF));
    expect(getIntOption(fd, SO_RCVBUF)).toBe(getIntOption(plain, SO_RCVBUF));
    closeFd(plain);
  });

  test("a failed bind closes the socket it made", () => {
    const before = readdirSync("/proc/self/fd").length;
    for (let i = 0; i < 5; i++) expect(() => openUdp({ ip: "192.0.2.1", port: 0 })).toThrow();
    expect(readdirSync("/proc/self/fd").length).toBe(before);
  });

  test("a port in use names the address and errno, with a hint", () => {
    const fd = udp();
    const { port } = localEndpoint(fd);
    expect(() => openUdp({ ip: "127.0.0.1", port })).toThrow(`cannot bind a UDP socket to 127.0.0.1:${port}: EADDRINUSE`);
    try {
      openUdp({ ip: "127.0.0.1", port });
    } catch (e) {
      expect((e as { hint?: string }).hint).toMatch(/another process uses this port/);
    }
  });

  test("an address not on this host: EADDRNOTAVAIL, no hint", () => {
    let err: { message: string; hint?: string } | undefined;
    try {
      openUdp({ ip: "192.0.2.1", port: 0 });
    } catch (e) {
      err = e as typeof err;
    }
    expect(err?.message).toBe("cannot bind a UDP socket to 192.0.2.1:0: EADDRNOTAVAIL");
    expect(err?.hint).toBeUndefined();
  });

  test("bad socket options and descriptors are errors naming them", () => {
    expect(() => setIntOption(-1, SO_RCVBUF, 1)).toThrow("cannot set socket option 8 to 1 on descriptor -1: EBADF");
    expect(() => getIntOption(-1, SO_RCVBUF)).toThrow("cannot read socket option 8 of descriptor -1: EBADF");
    expect(() => localEndpoint(-1)).toThrow("cannot read the address of descriptor -1: EBADF");
  });

  test("closeFd closes: the second close is EBADF", () => {
    const fd = openUdp({ ip: "127.0.0.1", port: 0 });
    closeFd(fd);
    expect(() => closeFd(fd)).toThrow(`cannot close descriptor ${fd}: EBADF`);
  });
});

describe("single datagrams", () => {
  test("sendTo and recvFrom carry bytes and the sender's address", () => {
    const a = udp();
    const b = udp("127.0.0.2");
    expect(recvFrom(a)).toBe(-11); // nothing queued: -EAGAIN
    expect(pollOne(a, POLLIN, 0)).toBe(0);
    expect(sendTo(b, new Uint8Array([1, 2, 3]), localEndpoint(a))).toBe(3);
    waitReadable(a);
    const got = recvFrom(a);
    expect(got).toEqual({ data: new Uint8Array([1, 2, 3]), from: localEndpoint(b) });
  });

  test("an empty datagram is 0 bytes, not an error", () => {
    const a = udp();
    expect(sendTo(udp(), new Uint8Array(0), localEndpoint(a))).toBe(0);
    waitReadable(a);
    expect((recvFrom(a) as { data: Uint8Array }).data.length).toBe(0);
  });

  test("a refused send returns -errno (broadcast without SO_BROADCAST: EACCES)", () => {
    expect(sendTo(udp("0.0.0.0"), new Uint8Array(1), { ip: "255.255.255.255", port: 9 })).toBe(-13);
  });
});

describe("RecvBatch and SendBatch (recvmmsg(2), sendmmsg(2))", () => {
  test("one recv takes every queued datagram with its length, bytes and sender", () => {
    const rx = udp();
    const s1 = udp("127.0.0.2");
    const s2 = udp("127.0.0.3");
    const to = localEndpoint(rx);
    for (let i = 0; i < 5; i++) sendTo(i % 2 === 0 ? s1 : s2, new Uint8Array(100 + i).fill(i + 1), to);
    waitReadable(rx);
    const rb = new RecvBatch(8, 2048);
    expect(rb.recv(rx)).toBe(5);
    for (let i = 0; i < 5; i++) {
      expect(rb.length(i)).toBe(100 + i);
      expect(rb.data(i)).toEqual(new Uint8Array(100 + i).fill(i + 1));
      expect(rb.truncated(i)).toBe(false);
      const from = localEndpoint(i % 2 === 0 ? s1 : s2);
      expect(rb.source(i)).toEqual(from);
      expect(rb.sourceIp(i)).toBe(parseIpv4(from.ip)!);
    }
    expect(rb.recv(rx)).toBe(-11);
  });

  test("a batch takes at most its size; the rest waits for the next recv", () => {
    const rx = udp();
    const tx = udp();
    for (let i = 0; i < 5; i++) sendTo(tx, new Uint8Array([i]), localEndpoint(rx));
    waitReadable(rx);
    const rb = new RecvBatch(3, 64);
    expect(rb.recv(rx)).toBe(3);
    expect(rb.data(2)).toEqual(new Uint8Array([2]));
    expect(rb.recv(rx)).toBe(2);
    expect(rb.data(0)).toEqual(new Uint8Array([3]));
    expect(rb.data(1)).toEqual(new Uint8Array([4]));
  });

  test("a datagram longer than its slot is marked truncated (MSG_TRUNC), each by its own flags", () => {
    const rx = udp();
    const tx = udp();
    sendTo(tx, new Uint8Array(10).fill(1), localEndpoint(rx));
    sendTo(tx, new Uint8Array(40).fill(7), localEndpoint(rx));
    waitReadable(rx);
    const rb = new RecvBatch(2, 16);
    expect(rb.recv(rx)).toBe(2);
    expect([rb.truncated(0), rb.truncated(1)]).toEqual([false, true]);
    expect([rb.length(0), rb.length(1)]).toEqual([10, 16]);
  });

  test("a refused datagram in the middle of a batch: the ones after it are still sent", () => {
    const rx = udp("127.0.0.2");
    const tx = udp();
    const src = new RecvBatch(1, 70000);
    src.buf.fill(5);
    const sb = new SendBatch(4, localEndpoint(rx));
    sb.add(src.bufAddr, 10);
    sb.add(src.bufAddr, 70000); // over the UDP maximum: EMSGSIZE
    sb.add(src.bufAddr, 20);
    expect(sb.flush(tx)).toEqual({ sent: 2, bytes: 30, errors: 1, lastErrno: 90, gsoSends: 0, gsoRefused: false });
    waitReadable(rx);
    const rb = new RecvBatch(4, 256);
    expect(rb.recv(rx)).toBe(2);
    expect([rb.length(0), rb.length(1)]).toEqual([10, 20]);
  });

  test("a SendBatch sends its datagrams in order to its one destination, then is empty", () => {
    const rx = udp("127.0.0.2");
    const tx = udp();
    const src = new RecvBatch(4, 256);
    const sb = new SendBatch(3, localEndpoint(rx));
    expect(sb.count).toBe(0);
    for (let i = 0; i < 3; i++) {
      src.buf.fill(i + 10, i * 256, i * 256 + 50 + i);
      expect(sb.add(src.bufAddr + i * 256, 50 + i)).toBe(true);
    }
    expect(sb.add(src.bufAddr, 1)).toBe(false);
    expect(sb.count).toBe(3);
    expect(sb.flush(tx)).toEqual({ sent: 3, bytes: 153, errors: 0, lastErrno: 0, gsoSends: 0, gsoRefused: false });
    expect(sb.count).toBe(0);
    expect(sb.flush(tx)).toEqual({ sent: 0, bytes: 0, errors: 0, lastErrno: 0, gsoSends: 0, gsoRefused: false });
    waitReadable(rx);
    const rb = new RecvBatch(4, 256);
    expect(rb.recv(rx)).toBe(3);
    for (let i = 0; i < 3; i++) {
      expect(rb.data(i)).toEqual(new Uint8Array(50 + i).fill(i + 10));
      expect(rb.source(i)).toEqual(localEndpoint(tx));
    }
  });

  test("refused datagrams are counted and skipped, one by one, with the errno", () => {
    const tx = udp("0.0.0.0");
    const sb = new SendBatch(4, { ip: "255.255.255.255", port: 9 });
    const b = new RecvBatch(1, 64);
    for (let i = 0; i < 3; i++) sb.add(b.bufAddr, 10);
    expect(sb.flush(tx)).toEqual({ sent: 0, bytes: 0, errors: 3, lastErrno: 13, gsoSends: 0, gsoRefused: false });
    expect(sb.count).toBe(0);
  });
});

/** SO_NO_CHECK (socket(7), asm-generic/socket.h): no UDP checksums on send, so the kernel refuses GSO (EINVAL). */
const SO_NO_CHECK = 11;

/** noGsoSocket is a sending socket whose GSO sends the kernel refuses while plain ones go. */
function noGsoSocket(): number {
  const fd = udp();
  expect(libc.setsockopt(fd, 1, SO_NO_CHECK, new Int32Array([1]), 4)).toBe(0);
  return fd;
}

/** pattern fills a buffer with bytes that differ by position, so a misplaced segment shows. */
function pattern(n: number): RecvBatch {
  const b = new RecvBatch(1, n);
  for (let i = 0; i < n; i++) b.buf[i] = (i * 7 + (i >> 8)) & 255;
  return b;
}

/** drainAll takes every datagram queued on fd, one per read (loopback queues a datagram before its send returns: 20 ms of quiet is the end). */
function drainAll(fd: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  while (pollOne(fd, POLLIN, 20) !== 0) {
    const r = recvFrom(fd);
    if (typeof r !== "number") out.push(r.data);
  }
  return out;
}

/** cuts gives the [start, length] pieces of [0, len) in seg-byte segments. */
const cuts = (len: number, seg: number): [number, number][] =>
  Array.from({ length: Math.ceil(len / seg) }, (_, i) => [i * seg, Math.min(seg, len - i * seg)] as [number, number]);

describe("UDP GSO sends and GRO reads (udp(7))", () => {
  test("a run of same-size datagrams, the last shorter, is ONE message; a GRO reader gets it as one run with its segment size", () => {
    const rx = udp("127.0.0.2");
    expect(setGro(rx, true)).toBe(true);
    const tx = udp();
    const src = pattern(20000);
    const sb = new SendBatch(64, localEndpoint(rx));
    for (let i = 0; i < 10; i++) expect(sb.add(src.bufAddr + i * 1000, 1000)).toBe(true);
    expect(sb.add(src.bufAddr + 10000, 500)).toBe(true);
    expect([sb.count, sb.messages]).toEqual([11, 1]);
    expect(sb.flush(tx)).toEqual({ sent: 11, bytes: 10500, errors: 0, lastErrno: 0, gsoSends: 1, gsoRefused: false });
    sendTo(tx, new Uint8Array(300).fill(9), localEndpoint(rx)); // a plain datagram after it: no segment size
    waitReadable(rx);
    const rb = new RecvBatch(4);
    expect(rb.recv(rx)).toBe(2);
    expect([rb.length(0), rb.segSize(0), rb.truncated(0)]).toEqual([10500, 1000, false]);
    expect(rb.data(0)).toEqual(src.buf.subarray(0, 10500));
    expect([rb.length(1), rb.segSize(1)]).toEqual([300, 0]);
    // the next recv gives the control room back: a run after a plain datagram still has its size
    sb.add(src.bufAddr, 3000, 1000);
    sb.flush(tx);
    waitReadable(rx);
    expect(rb.recv(rx)).toBe(1);
    expect([rb.length(0), rb.segSize(0)]).toEqual([3000, 1000]);
  });

  test("a reader without GRO gets the run one datagram per read (the kernel segments it): GSO is safe for any receiver", () => {
    const rx = udp("127.0.0.2");
    const tx = udp();
    const src = pattern(5000);
    const sb = new SendBatch(8, localEndpoint(rx));
    sb.add(src.bufAddr, 4300, 1000);
    expect(sb.flush(tx).gsoSends).toBe(1);
    expect(drainAll(rx)).toEqual(cuts(4300, 1000).map(([o, n]) => src.buf.slice(o, o + n)));
  });

  test("setGro off again: runs arrive split; a bad descriptor is refused", () => {
    const rx = udp("127.0.0.2");
    const tx = udp();
    setGro(rx, true);
    expect(setGro(rx, false)).toBe(true);
    const v = new Int32Array([7]);
    const len = new Uint32Array([4]);
    expect(libc.getsockopt(rx, SOL_UDP, UDP_GRO, v, len)).toBe(0);
    expect(v[0]).toBe(0);
    const src = pattern(3000);
    const sb = new SendBatch(8, localEndpoint(rx));
    sb.add(src.bufAddr, 3000, 1000);
    sb.flush(tx);
    waitReadable(rx);
    const rb = new RecvBatch(8, 4096);
    expect(rb.recv(rx)).toBe(3);
    expect([0, 1, 2].map((i) => [rb.length(i), rb.segSize(i)])).toEqual([[1000, 0], [1000, 0], [1000, 0]]);
    expect(setGro(-1, true)).toBe(false);
  });

  test.each([
    ["same size", [100, 100, 100], 1],
    ["a shorter one ends the run; the next starts a new one", [100, 100, 50, 100], 2],
    ["a longer one starts a new run", [100, 200, 200], 2],
    ["a shorter one first: the next longer cannot join", [50, 100], 2],
    ["equal after a shorter-ended run", [100, 40, 40], 2],
    ["empty datagrams never join", [0, 0, 100, 0], 4],
    ["after an empty datagram", [0, 10, 10], 2],
    [`${UDP_MAX_SEGMENTS + 1} datagrams: over the segment limit`, Array(UDP_MAX_SEGMENTS + 1).fill(10), 2],
    ["50 x 1400: over the 65507-byte limit", Array(50).fill(1400), 2],
  ])("runs: %s", (_, sizes, messages) => {
    const rx = udp("127.0.0.2");
    const tx = udp();
    const src = pattern(80000);
    const sb = new SendBatch(100, localEndpoint(rx));
    let off = 0;
    for (const n of sizes) {
      sb.add(src.bufAddr + off, n);
      off += n;
    }
    expect(sb.messages).toBe(messages);
    const r = sb.flush(tx);
    expect([r.sent, r.bytes, r.errors]).toEqual([sizes.length, off, 0]);
    off = 0;
    expect(drainAll(rx)).toEqual(sizes.map((n) => src.buf.slice(off, (off += n))));
  });

  test("the limits: 46 x 1400 bytes fit one message (64400 <= 65507), 47 do not; 64 x 10 fit, 65 do not", () => {
    const src = pattern(70000);
    const cases: [number, number, number][] = [[1400, 46, 1], [1400, 47, 2], [10, 64, 1], [10, 65, 2]];
    for (const [size, n, messages] of cases) {
      const sb = new SendBatch(100, { ip: "127.0.0.1", port: 9 });
      for (let i = 0; i < n; i++) sb.add(src.bufAddr + i * size, size);
      expect([size, n, sb.messages]).toEqual([size, n, messages]);
      sb.flush(-1);
    }
    expect(Math.floor(UDP_MAX_PAYLOAD / 1400)).toBe(46);
  });

  test("a run given whole (a GRO read) is cut into messages within the limits, and joins a run of its size", () => {
    const rx = udp("127.0.0.2", 0, { rcvbuf: 4 << 20 });
    const tx = udp();
    const src = pattern(150000);
    const sb = new SendBatch(128, localEndpoint(rx));
    expect(sb.add(src.bufAddr, 100 * 1400 - 700, 1400)).toBe(true); // 100 datagrams, the last 700 bytes
    expect([sb.count, sb.messages]).toEqual([100, 3]); // 46 + 46 + 8
    expect(sb.add(src.bufAddr + 139300, 300)).toBe(true); // after a short one: a new run
    expect(sb.messages).toBe(4);
    const r = sb.flush(tx);
    expect([r.sent, r.bytes, r.gsoSends, r.errors]).toEqual([101, 139600, 3, 0]);
    const got = drainAll(rx);
    expect(got.map((d) => d.length)).toEqual([...Array(99).fill(1400), 700, 300]);
    expect(Buffer.concat(got)).toEqual(Buffer.from(src.buf.subarray(0, 139600)));

    const sb2 = new SendBatch(16, localEndpoint(rx));
    sb2.add(src.bufAddr, 100);
    sb2.add(src.bufAddr + 100, 300, 100); // a run of its size: joins
    sb2.add(src.bufAddr + 400, 250, 100); // joins, ends with a short one
    sb2.add(src.bufAddr + 650, 100);
    expect([sb2.count, sb2.messages]).toEqual([8, 2]);
    sb2.add(src.bufAddr + 750, 200, 50); // another size
    expect(sb2.messages).toBe(3);
    expect(sb2.flush(tx).sent).toBe(12);
    expect(drainAll(rx).map((d) => d.length)).toEqual([100, 100, 100, 100, 100, 100, 50, 100, 50, 50, 50, 50]);
  });

  test("a batch holds `size` datagrams, a run counting each: too many is refused whole", () => {
    const sb = new SendBatch(4, { ip: "127.0.0.1", port: 9 });
    const src = pattern(1000);
    expect(sb.add(src.bufAddr, 500, 100)).toBe(false);
    expect(sb.count).toBe(0);
    expect(sb.add(src.bufAddr, 300, 100)).toBe(true);
    expect(sb.add(src.bufAddr, 100)).toBe(true);
    expect(sb.add(src.bufAddr, 100)).toBe(false);
    expect(sb.count).toBe(4);
  });

  test("gso off: one datagram per message, a run cut into its datagrams", () => {
    const rx = udp("127.0.0.2");
    const tx = udp();
    const src = pattern(5000);
    const sb = new SendBatch(16, localEndpoint(rx));
    sb.gso = false;
    sb.add(src.bufAddr, 100);
    sb.add(src.bufAddr + 100, 100);
    sb.add(src.bufAddr + 200, 250, 100);
    expect([sb.count, sb.messages]).toEqual([5, 5]);
    expect(sb.flush(tx)).toEqual({ sent: 5, bytes: 450, errors: 0, lastErrno: 0, gsoSends: 0, gsoRefused: false });
    expect(drainAll(rx)).toEqual(cuts(450, 100).map(([o, n]) => src.buf.slice(o, o + n)));
  });

  test("a GSO send the kernel refuses goes again one datagram per message, in order, nothing twice; gso stays off", () => {
    const rx = udp("127.0.0.2");
    const tx = noGsoSocket();
    const src = pattern(10000);
    const sb = new SendBatch(32, localEndpoint(rx));
    sb.add(src.bufAddr, 50); // a message of its own, sent before the refusal
    sb.add(src.bufAddr + 50, 3000, 1000);
    sb.add(src.bufAddr + 3050, 1000);
    sb.add(src.bufAddr + 4050, 20);
    sb.add(src.bufAddr + 4070, 2500, 1000);
    expect(sb.messages).toBe(3);
    expect(sb.flush(tx)).toEqual({ sent: 9, bytes: 6570, errors: 0, lastErrno: 0, gsoSends: 0, gsoRefused: true });
    expect(sb.gso).toBe(false);
    const want = [[0, 50], [50, 1000], [1050, 1000], [2050, 1000], [3050, 1000], [4050, 20], [4070, 1000], [5070, 1000], [6070, 500]];
    expect(drainAll(rx)).toEqual(want.map(([o, n]) => src.buf.slice(o!, o! + n!)));
    sb.add(src.bufAddr, 100);
    sb.add(src.bufAddr, 100);
    expect(sb.messages).toBe(2);
    expect(sb.flush(tx).gsoRefused).toBe(false);
  });

  test("a refused single datagram is an error, not a GSO refusal", () => {
    const tx = noGsoSocket();
    const rx = udp("127.0.0.2");
    const src = pattern(70000);
    const sb = new SendBatch(4, localEndpoint(rx));
    sb.add(src.bufAddr, 70000);
    expect(sb.flush(tx)).toEqual({ sent: 0, bytes: 0, errors: 1, lastErrno: 90, gsoSends: 0, gsoRefused: false });
    expect(sb.gso).toBe(true);
  });
});
