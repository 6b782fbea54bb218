import { afterEach, describe, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { libc, POLLIN, SO_RCVBUF, SO_SNDBUF } from "../../../lib/relay/ffi.ts";
import {
  closeFd, errnoName, formatIpv4, getIntOption, localEndpoint, openUdp, parseIpv4, pollOne, readSockaddrIn, RecvBatch,
  recvFrom, SendBatch, sendTo, setIntOption, sockaddrIn,
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
