// The libc calls the VXLAN relay needs, through bun:ffi (https://bun.sh/docs/api/ffi), and the C struct
// layouts it passes. Linux on x86_64 and aarch64 share these layouts (both LP64; the generic socket ABI
// of include/uapi/asm-generic/socket.h and the same flag values), so one table serves both.
import { dlopen, FFIType, ptr, read, type Pointer } from "bun:ffi";

const { i32, u32, u64, i64_fast, ptr: P } = FFIType;

/** LIBC_NAMES: glibc's soname (hosts and the node image), then musl's for the Alpine builds. */
export const LIBC_NAMES = ["libc.so.6", `libc.musl-${process.arch === "arm64" ? "aarch64" : "x86_64"}.so.1`];

// Stryker disable all: a changed C signature does not fail a test, it makes bun:ffi call libc wrongly (crash or hang).
/** SYMBOLS: the libc functions and their C signatures (ssize_t as i64_fast: a plain number). */
const SYMBOLS = {
  socket: { args: [i32, i32, i32], returns: i32 },
  bind: { args: [i32, P, u32], returns: i32 },
  listen: { args: [i32, i32], returns: i32 },
  accept4: { args: [i32, P, P, i32], returns: i32 },
  connect: { args: [i32, P, u32], returns: i32 },
  setsockopt: { args: [i32, i32, i32, P, u32], returns: i32 },
  getsockopt: { args: [i32, i32, i32, P, P], returns: i32 },
  getsockname: { args: [i32, P, P], returns: i32 },
  sendto: { args: [i32, P, u64, i32, P, u32], returns: i64_fast },
  recvfrom: { args: [i32, P, u64, i32, P, P], returns: i64_fast },
  sendmsg: { args: [i32, P, i32], returns: i64_fast },
  recvmsg: { args: [i32, P, i32], returns: i64_fast },
  sendmmsg: { args: [i32, P, u32, i32], returns: i32 },
  recvmmsg: { args: [i32, P, u32, i32, P], returns: i32 },
  poll: { args: [P, u64, i32], returns: i32 },
  eventfd: { args: [u32, i32], returns: i32 },
  read: { args: [i32, P, u64], returns: i64_fast },
  write: { args: [i32, P, u64], returns: i64_fast },
  close: { args: [i32], returns: i32 },
  __errno_location: { args: [], returns: P },
} as const;
// Stryker restore all

/** Buf: a pointer argument: bytes Bun passes by address, a raw address (a number), or NULL. */
export type Buf = NodeJS.TypedArray | number | null;

/** Libc: SYMBOLS as TypeScript sees them: addresses as plain numbers (ptr() values plus offsets), ssize_t as number. */
export interface Libc {
  socket(domain: number, type: number, protocol: number): number;
  bind(fd: number, addr: Buf, len: number): number;
  listen(fd: number, backlog: number): number;
  accept4(fd: number, addr: Buf, len: Buf, flags: number): number;
  connect(fd: number, addr: Buf, len: number): number;
  setsockopt(fd: number, level: number, name: number, value: Buf, len: number): number;
  getsockopt(fd: number, level: number, name: number, value: Buf, len: Buf): number;
  getsockname(fd: number, addr: Buf, len: Buf): number;
  sendto(fd: number, buf: Buf, len: number, flags: number, to: Buf, tolen: number): number;
  recvfrom(fd: number, buf: Buf, len: number, flags: number, from: Buf, fromlen: Buf): number;
  sendmsg(fd: number, msg: Buf, flags: number): number;
  recvmsg(fd: number, msg: Buf, flags: number): number;
  sendmmsg(fd: number, msgs: Buf, vlen: number, flags: number): number;
  recvmmsg(fd: number, msgs: Buf, vlen: number, flags: number, timeout: Buf): number;
  poll(fds: Buf, nfds: number, timeoutMs: number): number;
  eventfd(initval: number, flags: number): number;
  read(fd: number, buf: Buf, len: number): number;
  write(fd: number, buf: Buf, len: number): number;
  close(fd: number): number;
  __errno_location(): number;
}

/** libc is the C library's socket calls, loaded once per thread (each Worker loads its own). */
export const libc = openLibc(LIBC_NAMES) as unknown as Libc;

/** openLibc loads the first of names that the dynamic loader finds. */
export function openLibc(names: readonly string[]) {
  let last: unknown;
  for (const name of names) {
    try {
      return dlopen(name, SYMBOLS).symbols;
    } catch (err) {
      last = err;
    }
  }
  throw new Error(`cannot load the C library (tried ${names.join(", ")}): ${String(last)}`);
}

/** errno is the calling thread's errno (errno(3): thread-local; Bun FFI reaches it through __errno_location). */
export function errno(): number {
  return read.i32(libc.__errno_location() as Pointer, 0);
}

// Constants: socket(2), socket(7), ip(7), unix(7), poll(2), eventfd(2), errno(3) (asm-generic values).
/** AF_INET, AF_UNIX: address families (socket(2)). */
export const AF_UNIX = 1;
export const AF_INET = 2;
/** SOCK_*: socket types and the flags or-ed into them (socket(2)). */
export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;
/** SOL_SOCKET options (socket(7)). SO_RCVBUFFORCE needs CAP_NET_ADMIN: not for a rootless relay. */
export const SOL_SOCKET = 1;
export const SO_REUSEADDR = 2;
export const SO_SNDBUF = 7;
export const SO_RCVBUF = 8;
export const SO_PEERCRED = 17;
/** SCM_RIGHTS: the control message type carrying file descriptors (unix(7)). */
export const SCM_RIGHTS = 1;
/** MSG_* flags of send(2)/recv(2). */
export const MSG_DONTWAIT = 0x40;
export const MSG_NOSIGNAL = 0x4000;
export const MSG_CMSG_CLOEXEC = 0x40000000;
/** POLL* events (poll(2)). */
export const POLLIN = 0x1;
export const POLLOUT = 0x4;
export const POLLERR = 0x8;
export const POLLHUP = 0x10;
/** EFD_* flags (eventfd(2)). */
export const EFD_CLOEXEC = 0o2000000;
export const EFD_NONBLOCK = 0o4000;
/** errno values (errno(3), asm-generic/errno-base.h, errno.h). */
export const EINTR = 4;
export const EIO = 5;
export const EAGAIN = 11;
export const EINVAL = 22;
export const EMSGSIZE = 90;
/** SOL_UDP: the UDP protocol level for setsockopt(2) and control messages (udp(7); IPPROTO_UDP). */
export const SOL_UDP = 17;
/** UDP_SEGMENT: UDP GSO (udp(7)): a send's control message (u16) or socket option giving the segment size the kernel cuts the payload into. */
export const UDP_SEGMENT = 103;
/** UDP_GRO: UDP GRO (udp(7)): the socket takes coalesced runs of datagrams, each with a control message (int) giving the segment size. */
export const UDP_GRO = 104;
/** UDP_MAX_SEGMENTS: segments one GSO send may carry (include/linux/udp.h). */
export const UDP_MAX_SEGMENTS = 64;
/** UDP_MAX_PAYLOAD: the largest IPv4 UDP payload (65535 - 20 IP - 8 UDP): the bound of one GSO send's total. */
export const UDP_MAX_PAYLOAD = 65507;

// Struct layouts (LP64): offsets and sizes in bytes.
/** SOCKADDR_IN_SIZE: struct sockaddr_in (ip(7)): u16 family, u16 port (network order), u32 addr (network order), 8 zero. */
export const SOCKADDR_IN_SIZE = 16;
/** SOCKADDR_UN_SIZE: struct sockaddr_un (unix(7)): u16 family, char sun_path[108]. */
export const SOCKADDR_UN_SIZE = 110;
/** IOVEC_SIZE: struct iovec (readv(2)): void *iov_base, size_t iov_len. */
export const IOVEC_SIZE = 16;
/** MSGHDR: struct msghdr (recvmsg(2)) field offsets: name, namelen (u32), iov, iovlen, control, controllen, flags (int). */
export const MSGHDR = { name: 0, namelen: 8, iov: 16, iovlen: 24, control: 32, controllen: 40, flags: 48, size: 56 } as const;
/** MMSGHDR: struct mmsghdr (recvmmsg(2)): a msghdr, then unsigned msg_len, padded to 8. */
export const MMSGHDR = { hdr: 0, len: 56, size: 64 } as const;
/** CMSGHDR: struct cmsghdr (cmsg(3)): size_t cmsg_len, int level, int type, then data aligned to 8. */
export const CMSGHDR = { len: 0, level: 8, type: 12, data: 16 } as const;
/** POLLFD_SIZE: struct pollfd (poll(2)): int fd, short events, short revents. */
export const POLLFD_SIZE = 8;

/** cmsgSpace is CMSG_SPACE(n) (cmsg(3)): header plus data, rounded up to the 8-byte alignment. */
export function cmsgSpace(n: number): number {
  return CMSGHDR.data + align8(n);
}

/** cmsgLen is CMSG_LEN(n) (cmsg(3)): header plus n data bytes, no trailing padding. */
export function cmsgLen(n: number): number {
  return CMSGHDR.data + n;
}

/** align8 rounds n up to a multiple of 8 (sizeof(size_t), cmsg(3)'s CMSG_ALIGN). */
export function align8(n: number): number {
  return (n + 7) & ~7;
}

/**
 * addr is the address of a view's byte at offset, for pointer fields inside structs and raw addresses. It
 * reads view.buffer first: JavaScriptCore keeps a small typed array's bytes in the GC heap and copies them
 * out the first time its ArrayBuffer is asked for, so an address taken before that would go stale.
 */
export function addr(view: NodeJS.TypedArray, offset = 0): number {
  void view.buffer;
  return ptr(view, offset);
}

/** putU64 writes a pointer or size_t (u64, little endian: x86_64 and aarch64 Linux) into a struct, without BigInt. */
export function putU64(dv: DataView, offset: number, n: number): void {
  dv.setUint32(offset, n >>> 0, true);
  dv.setUint32(offset + 4, Math.floor(n / 0x100000000), true);
}

/** getU64 reads a u64 field below 2^53 (pointers and lengths are). */
export function getU64(dv: DataView, offset: number): number {
  return dv.getUint32(offset, true) + dv.getUint32(offset + 4, true) * 0x100000000;
}
