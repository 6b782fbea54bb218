// UDP sockets as raw file descriptors (socket(2), ip(7), udp(7)) and batches of datagrams moved with one
// system call each way (recvmmsg(2), sendmmsg(2)): what the VXLAN relay runs on, below Bun's own sockets,
// because its host socket arrives as a descriptor (unix(7) SCM_RIGHTS) and batches save a call per datagram.
import { U7sError } from "../errors.ts";
import {
  AF_INET, CMSGHDR, EAGAIN, EINTR, EINVAL, EIO, EMSGSIZE, IOVEC_SIZE, MMSGHDR, MSG_DONTWAIT, MSGHDR, POLLFD_SIZE, POLLOUT,
  SO_RCVBUF, SO_SNDBUF, SOCK_CLOEXEC, SOCK_DGRAM, SOCKADDR_IN_SIZE, SOL_SOCKET, SOL_UDP, UDP_GRO, UDP_MAX_PAYLOAD,
  UDP_MAX_SEGMENTS, UDP_SEGMENT, addr, cmsgLen, errno, getU64, libc, putU64,
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

/**
 * setGro turns UDP GRO on or off for a socket (udp(7) UDP_GRO): on, the kernel may hand one recvmsg a run of
 * same-size datagrams of one flow, with a control message giving the segment size (RecvBatch.segSize). Only the
 * reader of a socket may turn it on, and only if it reads that control message. False when the kernel refuses
 * (before Linux 5.0: ENOPROTOOPT): the socket then gets one datagram per read, as without it.
 */
export function setGro(fd: number, on: boolean): boolean {
  return libc.setsockopt(fd, SOL_UDP, UDP_GRO, new Int32Array([on ? 1 : 0]), 4) === 0;
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

/** CTRL: control message room per received message: UDP_GRO's (24 bytes, cmsg(3) CMSG_SPACE(4)) and spare. */
export const CTRL = 64;
/** MSG_CTRUNC, MSG_TRUNC: msg_flags bits (recvmsg(2)): control data or the datagram did not fit. */
export const MSG_CTRUNC = 0x8;
export const MSG_TRUNC = 0x20;

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
  private readonly ctrlDv: DataView;
  /** filled: messages the last recv returned (their msg_controllen the kernel overwrote). */
  private filled: number;

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
    const ctrl = new Uint8Array(size * CTRL);
    this.ctrlDv = new DataView(ctrl.buffer);
    const ctrlAddr = addr(ctrl);
    for (let i = 0; i < size; i++) {
      putU64(iovDv, i * IOVEC_SIZE, this.bufAddr + i * slot);
      putU64(iovDv, i * IOVEC_SIZE + 8, slot);
      const h = i * MMSGHDR.size;
      putU64(this.hdrsDv, h + MSGHDR.name, namesAddr + i * SOCKADDR_IN_SIZE);
      this.hdrsDv.setUint32(h + MSGHDR.namelen, SOCKADDR_IN_SIZE, true);
      putU64(this.hdrsDv, h + MSGHDR.iov, iovAddr + i * IOVEC_SIZE);
      putU64(this.hdrsDv, h + MSGHDR.iovlen, 1);
      putU64(this.hdrsDv, h + MSGHDR.control, ctrlAddr + i * CTRL);
    }
    this.filled = size;
  }

  /**
   * recv takes what is queued on fd without waiting (MSG_DONTWAIT): the number of messages, or -errno.
   * msg_namelen is value-result (recvmsg(2)), but an AF_INET socket always writes back sizeof(sockaddr_in),
   * so the lengths set once in the constructor stay right; msg_controllen is value-result too and shrinks to
   * what a message carried, so the messages the last call filled get their room back first.
   */
  recv(fd: number): number {
    for (let i = 0; i < this.filled; i++) putU64(this.hdrsDv, i * MMSGHDR.size + MSGHDR.controllen, CTRL);
    const n = libc.recvmmsg(fd, this.hdrsAddr, this.size, MSG_DONTWAIT, null);
    this.filled = n < 0 ? 0 : n;
    return n < 0 ? -errno() : n;
  }

  /**
   * segSize is message i's UDP GRO segment size (udp(7): a UDP_GRO control message, int): its bytes are
   * datagrams of that size, the last possibly shorter. 0: one datagram (GRO off, or nothing coalesced).
   * Only the first control message is read: UDP_GRO is the only one the relay's sockets ask for.
   */
  segSize(i: number): number {
    const c = i * CTRL;
    if (getU64(this.hdrsDv, i * MMSGHDR.size + MSGHDR.controllen) < cmsgLen(4)) return 0;
    if (this.ctrlDv.getInt32(c + CMSGHDR.level, true) !== SOL_UDP || this.ctrlDv.getInt32(c + CMSGHDR.type, true) !== UDP_GRO) return 0;
    return this.ctrlDv.getInt32(c + CMSGHDR.data, true);
  }

  /** length is datagram i's size in bytes (mmsghdr.msg_len). */
  length(i: number): number {
    return this.hdrsDv.getUint32(i * MMSGHDR.size + MMSGHDR.len, true);
  }

  /**
   * truncated tells whether message i did not fit: its bytes were longer than its slot (MSG_TRUNC), or its
   * control data than CTRL (MSG_CTRUNC: a GRO segment size may be lost, so its bytes cannot be cut apart).
   */
  truncated(i: number): boolean {
    return (this.hdrsDv.getInt32(i * MMSGHDR.size + MSGHDR.flags, true) & (MSG_TRUNC | MSG_CTRUNC)) !== 0;
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

/** SendResult: datagrams and bytes the kernel took, datagrams it refused (each skipped, not retried), GSO sends and refusals. */
export interface SendResult {
  sent: number;
  bytes: number;
  errors: number;
  lastErrno: number;
  /** gsoSends: messages that carried several datagrams (UDP_SEGMENT) and were sent. */
  gsoSends: number;
  /** gsoRefused: the kernel refused a GSO send; its datagrams went one per message, and the batch's gso is now off. */
  gsoRefused: boolean;
}

/** GSO_CMSG: a UDP_SEGMENT control message's room (cmsg(3) CMSG_SPACE(2)). */
const GSO_CMSG = 24;
/** GSO_REFUSED: errno values of a send the kernel cannot segment (udp(7); net/ipv4/udp.c udp_send_skb). */
const GSO_REFUSED = new Set([EINVAL, EMSGSIZE, EIO]);

/**
 * SendBatch sends up to `size` datagrams to one destination with sendmmsg(2): each mmsghdr names the same
 * sockaddr_in and iovecs that point at bytes the caller keeps alive (usually a RecvBatch slot). With gso on,
 * a run of same-size datagrams (only the last may be shorter; at most UDP_MAX_SEGMENTS and UDP_MAX_PAYLOAD
 * bytes) goes as ONE message with a UDP_SEGMENT control message and the kernel cuts it (udp(7), UDP GSO).
 */
export class SendBatch {
  readonly size: number;
  /** count: datagrams queued. */
  count = 0;
  /** gso: join runs into GSO messages (turned off by a refusal; the caller may turn it off too). */
  gso = true;
  /** msgs: messages queued. */
  private msgs = 0;
  private iovs = 0;
  private readonly hdrs: Uint8Array;
  private readonly hdrsDv: DataView;
  private readonly iovDv: DataView;
  private readonly ctrlDv: DataView;
  private readonly hdrsAddr: number;
  private readonly iovAddr: number;
  private readonly ctrlAddr: number;
  private readonly dest: Uint8Array;
  /** Per message: segment size, datagrams, bytes, first iovec, iovecs, and whether it ends with a short segment. */
  private readonly mSeg: Int32Array;
  private readonly mSegs: Int32Array;
  private readonly mBytes: Int32Array;
  private readonly mIov: Int32Array;
  private readonly mIovs: Int32Array;
  private readonly mClosed: Uint8Array;

  constructor(size: number, to: Endpoint) {
    this.size = size;
    this.dest = sockaddrIn(to);
    this.hdrs = new Uint8Array(size * MMSGHDR.size);
    this.hdrsDv = new DataView(this.hdrs.buffer);
    const iov = new Uint8Array(size * IOVEC_SIZE);
    this.iovDv = new DataView(iov.buffer);
    const ctrl = new Uint8Array(size * GSO_CMSG);
    this.ctrlDv = new DataView(ctrl.buffer);
    this.hdrsAddr = addr(this.hdrs);
    this.iovAddr = addr(iov);
    this.ctrlAddr = addr(ctrl);
    const destAddr = addr(this.dest);
    for (let i = 0; i < size; i++) {
      const h = i * MMSGHDR.size;
      putU64(this.hdrsDv, h + MSGHDR.name, destAddr);
      this.hdrsDv.setUint32(h + MSGHDR.namelen, SOCKADDR_IN_SIZE, true);
      putU64(this.ctrlDv, i * GSO_CMSG + CMSGHDR.len, cmsgLen(2));
      this.ctrlDv.setInt32(i * GSO_CMSG + CMSGHDR.level, SOL_UDP, true);
      this.ctrlDv.setInt32(i * GSO_CMSG + CMSGHDR.type, UDP_SEGMENT, true);
    }
    this.mSeg = new Int32Array(size);
    this.mSegs = new Int32Array(size);
    this.mBytes = new Int32Array(size);
    this.mIov = new Int32Array(size);
    this.mIovs = new Int32Array(size);
    this.mClosed = new Uint8Array(size);
  }

  /** messages is how many sendmmsg(2) messages the queued datagrams take. */
  get messages(): number {
    return this.msgs;
  }

  /**
   * add queues len bytes at address p (for example RecvBatch.bufAddr + i * slot) as datagrams of seg bytes,
   * the last possibly shorter (seg >= len, the default: one datagram). False, and nothing queued, when the
   * batch has no room for all of them.
   */
  add(p: number, len: number, seg = len): boolean {
    const one = len <= seg;
    const segs = one ? 1 : Math.ceil(len / seg);
    if (this.count + segs > this.size) return false;
    this.count += segs;
    if (!this.gso || one) {
      if (one && this.gso && len > 0 && this.join(p, len, len, 1, len < this.mSeg[this.msgs - 1]!)) return true;
      if (one) this.start(p, len, 1, len, len === 0);
      else for (let off = 0; off < len; off += seg) this.start(p + off, Math.min(seg, len - off), 1, 0, true);
      return true;
    }
    const short = len % seg !== 0;
    if (this.join(p, len, seg, segs, short)) return true;
    // pieces of at most UDP_MAX_SEGMENTS datagrams and UDP_MAX_PAYLOAD bytes, each a message of its own
    const most = Math.min(UDP_MAX_SEGMENTS, Math.floor(UDP_MAX_PAYLOAD / seg)) * seg;
    for (let off = 0; off < len; off += most) {
      const n = Math.min(most, len - off);
      this.start(p + off, n, Math.ceil(n / seg), seg, n % seg !== 0);
    }
    return true;
  }

  /**
   * join appends segs datagrams of seg bytes (len in all) to the last message when they continue its run:
   * same segment size (a lone datagram: no longer), the message not ended by a short one, within the limits.
   */
  private join(p: number, len: number, seg: number, segs: number, short: boolean): boolean {
    const m = this.msgs - 1;
    if (m < 0 || this.mClosed[m] !== 0) return false;
    if (segs === 1 ? len > this.mSeg[m]! : seg !== this.mSeg[m]) return false;
    if (this.mSegs[m]! + segs > UDP_MAX_SEGMENTS || this.mBytes[m]! + len > UDP_MAX_PAYLOAD) return false;
    this.putIov(p, len);
    this.mIovs[m]!++;
    this.mSegs[m]! += segs;
    this.mBytes[m]! += len;
    this.mClosed[m] = short ? 1 : 0;
    putU64(this.hdrsDv, m * MMSGHDR.size + MSGHDR.iovlen, this.mIovs[m]!);
    this.setControl(m);
    return true;
  }

  /** start begins a message of one iovec: segs datagrams of seg bytes (the last possibly shorter); closed: nothing may join it. */
  private start(p: number, len: number, segs: number, seg: number, closed: boolean): void {
    const m = this.msgs++;
    this.mSeg[m] = seg;
    this.mSegs[m] = segs;
    this.mBytes[m] = len;
    this.mIov[m] = this.iovs;
    this.mIovs[m] = 1;
    this.mClosed[m] = closed ? 1 : 0;
    const h = m * MMSGHDR.size;
    putU64(this.hdrsDv, h + MSGHDR.iov, this.iovAddr + this.iovs * IOVEC_SIZE);
    putU64(this.hdrsDv, h + MSGHDR.iovlen, 1);
    this.putIov(p, len);
    this.setControl(m);
  }

  /** putIov appends one iovec. */
  private putIov(p: number, len: number): void {
    putU64(this.iovDv, this.iovs * IOVEC_SIZE, p);
    putU64(this.iovDv, this.iovs * IOVEC_SIZE + 8, len);
    this.iovs++;
  }

  /** setControl gives message m a UDP_SEGMENT control message when it carries several datagrams, none otherwise. */
  private setControl(m: number): void {
    const h = m * MMSGHDR.size;
    const gso = this.mSegs[m]! > 1;
    if (gso) this.ctrlDv.setUint16(m * GSO_CMSG + CMSGHDR.data, this.mSeg[m]!, true);
    putU64(this.hdrsDv, h + MSGHDR.control, gso ? this.ctrlAddr + m * GSO_CMSG : 0);
    putU64(this.hdrsDv, h + MSGHDR.controllen, gso ? GSO_CMSG : 0);
  }

  /**
   * unjoin rewrites messages from m on as one datagram each (GSO refused): their datagrams, read from the
   * iovecs, get an iovec and a message of their own; there is room, as messages and iovecs never outnumber datagrams.
   */
  private unjoin(m: number): void {
    const parts: number[] = [];
    for (let k = m; k < this.msgs; k++) {
      const seg = this.mSeg[k]!;
      for (let v = this.mIov[k]!; v < this.mIov[k]! + this.mIovs[k]!; v++) {
        const p = getU64(this.iovDv, v * IOVEC_SIZE);
        const len = getU64(this.iovDv, v * IOVEC_SIZE + 8);
        if (this.mSegs[k] === 1) parts.push(p, len);
        else for (let off = 0; off < len; off += seg) parts.push(p + off, Math.min(seg, len - off));
      }
    }
    this.iovs = this.mIov[m]!;
    this.msgs = m;
    for (let i = 0; i < parts.length; i += 2) this.start(parts[i]!, parts[i + 1]!, 1, 0, true);
  }

  /**
   * flush sends the queued datagrams on fd and empties the batch. sendmmsg(2) returns how many messages it
   * sent; a failing message (an error for the first one) is counted and skipped; EAGAIN on a non-blocking
   * socket waits for room (poll(2) POLLOUT) up to waitMs, then the rest is dropped rather than block the relay.
   * A GSO message the kernel cannot segment (EINVAL, EMSGSIZE, EIO: no checksum offload, a segment over the
   * path MTU) is sent again one datagram per message, and gso stays off for this batch.
   */
  flush(fd: number, waitMs = 200): SendResult {
    const r: SendResult = { sent: 0, bytes: 0, errors: 0, lastErrno: 0, gsoSends: 0, gsoRefused: false };
    let off = 0;
    while (off < this.msgs) {
      const n = libc.sendmmsg(fd, this.hdrsAddr + off * MMSGHDR.size, this.msgs - off, 0);
      if (n > 0) {
        for (let k = off; k < off + n; k++) {
          r.sent += this.mSegs[k]!;
          r.bytes += this.mBytes[k]!;
          if (this.mSegs[k]! > 1) r.gsoSends++;
        }
        off += n;
        continue;
      }
      const e = errno();
      if (e === EINTR) continue;
      if (e === EAGAIN && pollOne(fd, POLLOUT, waitMs) !== 0) continue;
      if (this.mSegs[off]! > 1 && GSO_REFUSED.has(e)) {
        r.gsoRefused = true;
        this.gso = false;
        this.unjoin(off);
        continue;
      }
      r.lastErrno = e;
      if (e === EAGAIN) {
        for (let k = off; k < this.msgs; k++) r.errors += this.mSegs[k]!;
        break;
      }
      r.errors += this.mSegs[off]!;
      off++;
    }
    this.count = 0;
    this.msgs = 0;
    this.iovs = 0;
    return r;
  }
}
