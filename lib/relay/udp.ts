// UDP sockets as raw file descriptors (socket(2), ip(7), udp(7)) and batches of datagrams moved with one
// system call each way (recvmmsg(2), sendmmsg(2)): what the VXLAN relay runs on, below Bun's own sockets,
// because its host socket arrives as a descriptor (unix(7) SCM_RIGHTS) and batches save a call per datagram.
import { U7sError } from "../errors.ts";
import {
  AF_INET, EAGAIN, EINTR, IOVEC_SIZE, MMSGHDR, MSG_DONTWAIT, MSGHDR, POLLFD_SIZE, POLLOUT, SO_RCVBUF, SO_SNDBUF,
  SOCK_CLOEXEC, SOCK_DGRAM, SOCKADDR_IN_SIZE, SOL_SOCKET, addr, errno, libc, putU64,
} from "./ffi.ts";

/** Endpoint is an IPv4 address and a UDP port. */
export interface Endpoint {
  ip: string;
  port: number;
}

/** parseIpv4 turns dotted-quad text into its 32-bit value (host order), or undefined when it is no IPv4 address. */
export function parseIpv4(ip: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return undefined;
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

/** formatIpv4 is parseIpv4's inverse. */
export function formatIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

/** sockaddrIn writes a struct sockaddr_in (ip(7)): family in host order, port and address in network order. */
export function sockaddrIn(ep: Endpoint, into = new Uint8Array(SOCKADDR_IN_SIZE)): Uint8Array {
  const ip = parseIpv4(ep.ip);
  if (ip === undefined) throw new U7sError(`invalid IPv4 address ${JSON.stringify(ep.ip)}`, { exitCode: 2 });
  if (!Number.isInteger(ep.port) || ep.port < 0 || ep.port > 65535) {
    throw new U7sError(`invalid UDP port ${ep.port}: valid are 0-65535`, { exitCode: 2 });
  }
  const dv = new DataView(into.buffer, into.byteOffset, SOCKADDR_IN_SIZE);
  into.fill(0, 0, SOCKADDR_IN_SIZE);
  dv.setUint16(0, AF_INET, true);
  dv.setUint16(2, ep.port, false);
  dv.setUint32(4, ip, false);
  return into;
}

/** readSockaddrIn reads a struct sockaddr_in back into an Endpoint. */
export function readSockaddrIn(b: Uint8Array, offset = 0): Endpoint {
  const dv = new DataView(b.buffer, b.byteOffset + offset, SOCKADDR_IN_SIZE);
  return { ip: formatIpv4(dv.getUint32(4, false)), port: dv.getUint16(2, false) };
}

/** errnoName gives a few errno values their names for messages (errno(3)); others stay numbers. */
export function errnoName(e: number): string {
  const names: Record<number, string> = {
    1: "EPERM", 2: "ENOENT", 4: "EINTR", 9: "EBADF", 11: "EAGAIN", 13: "EACCES", 22: "EINVAL", 24: "EMFILE",
    90: "EMSGSIZE", 98: "EADDRINUSE", 99: "EADDRNOTAVAIL", 101: "ENETUNREACH", 104: "ECONNRESET",
    105: "ENOBUFS", 110: "ETIMEDOUT", 111: "ECONNREFUSED",
  };
  return names[e] ?? `errno ${e}`;
}

/** UdpOptions: socket buffer sizes asked for (socket(7) SO_RCVBUF/SO_SNDBUF; the kernel caps them at net.core.*mem_max). */
export interface UdpOptions {
  rcvbuf?: number;
  sndbuf?: number;
}

/** openUdp creates a UDP socket bound to bind (port 0: any free port) and returns its descriptor (close-on-exec). */
export function openUdp(bind: Endpoint, opts: UdpOptions = {}): number {
  const sa = sockaddrIn(bind);
  const fd = libc.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw new U7sError(`cannot create a UDP socket for ${bind.ip}:${bind.port}: ${errnoName(errno())}`);
  try {
    if (opts.rcvbuf !== undefined) setIntOption(fd, SO_RCVBUF, opts.rcvbuf);
    if (opts.sndbuf !== undefined) setIntOption(fd, SO_SNDBUF, opts.sndbuf);
    if (libc.bind(fd, sa, SOCKADDR_IN_SIZE) !== 0) {
      const e = errno();
      throw new U7sError(`cannot bind a UDP socket to ${bind.ip}:${bind.port}: ${errnoName(e)}`, {
        hint: e === 98 ? "another process uses this port: free it or choose another" : undefined,
      });
    }
  } catch (err) {
    libc.close(fd);
    throw err;
  }
  return fd;
}

/** setIntOption sets an int SOL_SOCKET option (socket(7)). */
export function setIntOption(fd: number, option: number, value: number): void {
  const v = new Int32Array([value]);
  if (libc.setsockopt(fd, SOL_SOCKET, option, v, 4) !== 0) {
    throw new U7sError(`cannot set socket option ${option} to ${value} on descriptor ${fd}: ${errnoName(errno())}`);
  }
}

/** getIntOption reads an int SOL_SOCKET option (socket(7): SO_RCVBUF reads back twice the size set). */
export function getIntOption(fd: number, option: number): number {
  const v = new Int32Array(1);
  const len = new Uint32Array([4]);
  if (libc.getsockopt(fd, SOL_SOCKET, option, v, len) !== 0) {
    throw new U7sError(`cannot read socket option ${option} of descriptor ${fd}: ${errnoName(errno())}`);
  }
  return v[0]!;
}

/** localEndpoint is the address a socket is bound to (getsockname(2)), for example the port the kernel chose. */
export function localEndpoint(fd: number): Endpoint {
  const sa = new Uint8Array(SOCKADDR_IN_SIZE);
  const len = new Uint32Array([SOCKADDR_IN_SIZE]);
  if (libc.getsockname(fd, sa, len) !== 0) throw new U7sError(`cannot read the address of descriptor ${fd}: ${errnoName(errno())}`);
  return readSockaddrIn(sa);
}

/** closeFd closes a descriptor (close(2)); closing one twice is a bug in the caller, so EBADF throws. */
export function closeFd(fd: number): void {
  if (libc.close(fd) !== 0) throw new U7sError(`cannot close descriptor ${fd}: ${errnoName(errno())}`);
}

/** sendTo sends one datagram (sendto(2)) and returns the bytes sent, or -errno. */
export function sendTo(fd: number, data: Uint8Array, to: Endpoint): number {
  const n = libc.sendto(fd, data, data.byteLength, 0, sockaddrIn(to), SOCKADDR_IN_SIZE);
  return n < 0 ? -errno() : n;
}

/** recvFrom receives one datagram without waiting (recvfrom(2), MSG_DONTWAIT): its bytes and sender, or -errno. */
export function recvFrom(fd: number, max = 65536): { data: Uint8Array; from: Endpoint } | number {
  const buf = new Uint8Array(max);
  const sa = new Uint8Array(SOCKADDR_IN_SIZE);
  const len = new Uint32Array([SOCKADDR_IN_SIZE]);
  const n = libc.recvfrom(fd, buf, max, MSG_DONTWAIT, sa, len);
  return n < 0 ? -errno() : { data: buf.subarray(0, n), from: readSockaddrIn(sa) };
}

/** pollOne waits up to timeoutMs for events on one descriptor (poll(2)) and returns the events seen (0: timeout). */
export function pollOne(fd: number, events: number, timeoutMs: number): number {
  const pfd = new Uint8Array(POLLFD_SIZE);
  const dv = new DataView(pfd.buffer);
  dv.setInt32(0, fd, true);
  dv.setInt16(4, events, true);
  libc.poll(pfd, 1, timeoutMs); // revents stays 0 on a timeout or an error
  return dv.getInt16(6, true);
}

/** SLOT: room per datagram; a whole UDP payload fits (flannel.1's MTU follows the node's, up to 65470 on slirp4netns). */
export const SLOT = 65536;

/**
 * RecvBatch receives up to `size` datagrams with one recvmmsg(2): an array of struct mmsghdr, each with its
 * own sockaddr_in and one iovec pointing at its SLOT in one buffer, so nothing is copied in JavaScript.
 */
export class RecvBatch {
  readonly size: number;
  /** buf holds the datagrams, datagram i at i * slot. */
  readonly buf: Uint8Array;
  readonly slot: number;
  readonly bufAddr: number;
  private readonly hdrs: Uint8Array;
  private readonly hdrsDv: DataView;
  private readonly names: Uint8Array;
  private readonly namesDv: DataView;
  private readonly iov: Uint8Array;
  private readonly hdrsAddr: number;

  constructor(size: number, slot = SLOT) {
    this.size = size;
    this.slot = slot;
    this.buf = new Uint8Array(size * slot);
    this.hdrs = new Uint8Array(size * MMSGHDR.size);
    this.names = new Uint8Array(size * SOCKADDR_IN_SIZE);
    this.iov = new Uint8Array(size * IOVEC_SIZE);
    this.hdrsDv = new DataView(this.hdrs.buffer);
    this.namesDv = new DataView(this.names.buffer);
    this.bufAddr = addr(this.buf);
    this.hdrsAddr = addr(this.hdrs);
    const iovDv = new DataView(this.iov.buffer);
    const iovAddr = addr(this.iov);
    const namesAddr = addr(this.names);
    for (let i = 0; i < size; i++) {
      putU64(iovDv, i * IOVEC_SIZE, this.bufAddr + i * slot);
      putU64(iovDv, i * IOVEC_SIZE + 8, slot);
      const h = i * MMSGHDR.size;
      putU64(this.hdrsDv, h + MSGHDR.name, namesAddr + i * SOCKADDR_IN_SIZE);
      this.hdrsDv.setUint32(h + MSGHDR.namelen, SOCKADDR_IN_SIZE, true);
      putU64(this.hdrsDv, h + MSGHDR.iov, iovAddr + i * IOVEC_SIZE);
      putU64(this.hdrsDv, h + MSGHDR.iovlen, 1);
    }
  }

  /**
   * recv takes what is queued on fd without waiting (MSG_DONTWAIT): the number of datagrams, or -errno.
   * msg_namelen is value-result (recvmsg(2)), but an AF_INET socket always writes back sizeof(sockaddr_in),
   * so the lengths set once in the constructor stay right.
   */
  recv(fd: number): number {
    const n = libc.recvmmsg(fd, this.hdrsAddr, this.size, MSG_DONTWAIT, null);
    return n < 0 ? -errno() : n;
  }

  /** length is datagram i's size in bytes (mmsghdr.msg_len). */
  length(i: number): number {
    return this.hdrsDv.getUint32(i * MMSGHDR.size + MMSGHDR.len, true);
  }

  /** truncated tells whether datagram i was longer than its slot (recvmsg(2) MSG_TRUNC in msg_flags). */
  truncated(i: number): boolean {
    return (this.hdrsDv.getInt32(i * MMSGHDR.size + MSGHDR.flags, true) & 0x20) !== 0;
  }

  /** sourceIp is datagram i's sender address as a 32-bit number (host order). */
  sourceIp(i: number): number {
    return this.namesDv.getUint32(i * SOCKADDR_IN_SIZE + 4, false);
  }

  /** source is datagram i's sender. */
  source(i: number): Endpoint {
    return readSockaddrIn(this.names, i * SOCKADDR_IN_SIZE);
  }

  /** data is datagram i's bytes (a view into buf). */
  data(i: number): Uint8Array {
    return this.buf.subarray(i * this.slot, i * this.slot + this.length(i));
  }
}

/** SendResult: datagrams the kernel took, and those it refused (each refusal is skipped, not retried). */
export interface SendResult {
  sent: number;
  errors: number;
  lastErrno: number;
}

/**
 * SendBatch sends up to `size` datagrams to one destination with sendmmsg(2): each mmsghdr names the same
 * sockaddr_in and one iovec that points at bytes the caller keeps alive (usually a RecvBatch slot).
 */
export class SendBatch {
  readonly size: number;
  count = 0;
  private readonly hdrs: Uint8Array;
  private readonly hdrsDv: DataView;
  private readonly iovDv: DataView;
  private readonly hdrsAddr: number;
  private readonly dest: Uint8Array;

  constructor(size: number, to: Endpoint) {
    this.size = size;
    this.dest = sockaddrIn(to);
    this.hdrs = new Uint8Array(size * MMSGHDR.size);
    this.hdrsDv = new DataView(this.hdrs.buffer);
    const iov = new Uint8Array(size * IOVEC_SIZE);
    this.iovDv = new DataView(iov.buffer);
    this.hdrsAddr = addr(this.hdrs);
    const iovAddr = addr(iov);
    const destAddr = addr(this.dest);
    for (let i = 0; i < size; i++) {
      const h = i * MMSGHDR.size;
      putU64(this.hdrsDv, h + MSGHDR.name, destAddr);
      this.hdrsDv.setUint32(h + MSGHDR.namelen, SOCKADDR_IN_SIZE, true);
      putU64(this.hdrsDv, h + MSGHDR.iov, iovAddr + i * IOVEC_SIZE);
      putU64(this.hdrsDv, h + MSGHDR.iovlen, 1);
    }
  }

  /** add queues len bytes at address p (for example RecvBatch.bufAddr + i * slot); false when the batch is full. */
  add(p: number, len: number): boolean {
    if (this.count >= this.size) return false;
    putU64(this.iovDv, this.count * IOVEC_SIZE, p);
    putU64(this.iovDv, this.count * IOVEC_SIZE + 8, len);
    this.count++;
    return true;
  }

  /**
   * flush sends the queued datagrams on fd and empties the batch. sendmmsg(2) returns how many it sent; a
   * failing datagram (an error for the first one) is counted and skipped; EAGAIN on a non-blocking socket
   * waits for room (poll(2) POLLOUT) up to waitMs, then the rest is dropped rather than block the relay.
   */
  flush(fd: number, waitMs = 200): SendResult {
    const r: SendResult = { sent: 0, errors: 0, lastErrno: 0 };
    let off = 0;
    while (off < this.count) {
      const n = libc.sendmmsg(fd, this.hdrsAddr + off * MMSGHDR.size, this.count - off, 0);
      if (n > 0) {
        r.sent += n;
        off += n;
        continue;
      }
      const e = errno();
      if (e === EINTR) continue;
      if (e === EAGAIN && pollOne(fd, POLLOUT, waitMs) !== 0) continue;
      r.lastErrno = e;
      if (e === EAGAIN) {
        r.errors += this.count - off;
        break;
      }
      r.errors++;
      off++;
    }
    this.count = 0;
    return r;
  }
}
