// Handing sockets from u7s on the host to the relay in the node: a unix stream socket (unix(7)) whose one
// message carries the descriptors as an SCM_RIGHTS control message and a JSON blob as its data. The socket
// file is made 0600 before listen(2), and SO_PEERCRED (unix(7), socket(7)) refuses a client of another uid
// even if the file's mode were wrong.
import { chmodSync, closeSync, lstatSync, openSync, unlinkSync } from "node:fs";
import { basename, dirname } from "node:path";
import { U7sError } from "../errors.ts";
import type { Log } from "../log.ts";
import {
  AF_UNIX, CMSGHDR, EAGAIN, MSG_CMSG_CLOEXEC, MSGHDR, POLLHUP, POLLIN, SCM_RIGHTS, SO_PEERCRED, SOCK_CLOEXEC,
  SOCK_NONBLOCK, SOCK_STREAM, SOCKADDR_UN_SIZE, SOL_SOCKET, addr, cmsgLen, cmsgSpace, errno, getU64, libc, putU64,
} from "./ffi.ts";
import { errnoName, pollOne } from "./udp.ts";

/** Peer: who connected (struct ucred from SO_PEERCRED). */
export interface Peer {
  pid: number;
  uid: number;
}

/** Handout: the descriptors and the JSON-able meta data one client gets. */
export interface Handout {
  fds: number[];
  meta: unknown;
}

/** MAX_FDS: descriptors one handout may carry (the relay needs one; room for more). */
export const MAX_FDS = 16;
/** MAX_META: the meta blob's largest size in bytes. */
export const MAX_META = 65536;

/** sockaddrUn writes a struct sockaddr_un (unix(7)) for a path name and returns it with its length. */
export function sockaddrUn(path: string): { sa: Uint8Array; len: number } {
  const bytes = new TextEncoder().encode(path);
  if (bytes.length === 0 || bytes.length > SOCKADDR_UN_SIZE - 3) {
    throw new U7sError(`unix socket path too long or empty (${bytes.length} bytes, at most ${SOCKADDR_UN_SIZE - 3}): ${path}`, {
      hint: "a longer path is reached through its directory (unixName); the socket's own name must fit",
    });
  }
  const sa = new Uint8Array(SOCKADDR_UN_SIZE);
  new DataView(sa.buffer).setUint16(0, AF_UNIX, true);
  sa.set(bytes, 2);
  return { sa, len: 2 + bytes.length + 1 };
}

/**
 * unixName returns a name for a unix socket path that fits sun_path (unix(7): 108 bytes): the path itself,
 * or, when longer (a deep home directory), the socket's name in its directory reached through a descriptor
 * of that directory (/proc/self/fd/N/NAME, proc(5)), which bind(2) and connect(2) resolve like any path.
 * done() closes that descriptor once bound or connected.
 */
export function unixName(path: string): { name: string; done(): void } {
  if (new TextEncoder().encode(path).length <= SOCKADDR_UN_SIZE - 3) return { name: path, done: () => {} };
  const dir = openSync(dirname(path), "r");
  return { name: `/proc/self/fd/${dir}/${basename(path)}`, done: () => closeSync(dir) };
}

/** peerCredentials reads the connected peer's pid and uid (unix(7) SO_PEERCRED: struct ucred {pid, uid, gid}). */
export function peerCredentials(fd: number): Peer {
  const cred = new Int32Array(3);
  const len = new Uint32Array([12]);
  if (libc.getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, len) !== 0) {
    throw new U7sError(`cannot read the peer credentials of descriptor ${fd}: ${errnoName(errno())}`);
  }
  return { pid: cred[0]!, uid: cred[1]! >>> 0 };
}

/** ServeOptions: who may connect (default: this process's uid), where refusals go, how often to accept. */
export interface ServeOptions {
  uid?: number;
  log?: Pick<Log, "warn">;
  pollMs?: number;
}

/**
 * serveSockets listens on a unix socket at path (mode 0600, set before listen(2)) and answers each client
 * of the allowed uid with give(peer)'s descriptors and meta; a client of another uid, or one give answers
 * undefined for, gets the connection closed with nothing. A stale socket file at path is replaced.
 */
export function serveSockets(path: string, give: (peer: Peer) => Handout | undefined, opts: ServeOptions = {}): { close(): void } {
  const uid = opts.uid ?? process.getuid!();
  removeStaleSocket(path);
  const short = unixName(path);
  const fd = libc.socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    short.done();
    throw new U7sError(`cannot create a unix socket for ${path}: ${errnoName(errno())}`);
  }
  try {
    let bound: number, e: number;
    try {
      const { sa, len } = sockaddrUn(short.name);
      bound = libc.bind(fd, sa, len);
      e = errno();
    } finally {
      short.done();
    }
    if (bound !== 0) throw new U7sError(`cannot bind a unix socket to ${path}: ${errnoName(e)}`);
    // bind(2) made the file with 0777 & ~umask; nobody can connect before listen(2), so chmod now is in time.
    chmodSync(path, 0o600);
    if (libc.listen(fd, 16) !== 0) throw new U7sError(`cannot listen on ${path}: ${errnoName(errno())}`);
  } catch (err) {
    libc.close(fd);
    throw err;
  }
  const ino = lstatSync(path).ino;
  const acceptAll = () => {
    for (;;) {
      const conn = libc.accept4(fd, null, null, SOCK_CLOEXEC);
      if (conn < 0) return; // EAGAIN: nobody waiting (or the listener failed: the next tick tries again)
      try {
        answer(conn, uid, give, opts.log);
      } catch (err) {
        // One client's failure (give threw, too much to pass) must not stop the server for the next one.
        opts.log?.warn(`cannot hand out the relay's sockets: ${err instanceof Error ? err.message : String(err)}`);
      } finally {
        libc.close(conn);
      }
    }
  };
  const timer = setInterval(acceptAll, opts.pollMs ?? 50);
  let open = true;
  return {
    close() {
      if (!open) return;
      open = false;
      clearInterval(timer);
      libc.close(fd);
      // Only our own file: a newer server may have replaced it (removeStaleSocket) and still serve there.
      if (statIno(path) === ino) unlinkSync(path);
    },
  };
}

/** statIno is the inode number of the file at path, or undefined when there is none. */
function statIno(path: string): number | undefined {
  try {
    return lstatSync(path).ino;
  } catch {
    return undefined;
  }
}

/** removeStaleSocket removes a socket file left at path by an earlier server; any other file there is an error. */
function removeStaleSocket(path: string): void {
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return;
  }
  if (!st.isSocket()) {
    throw new U7sError(`cannot serve sockets at ${path}: a file that is no socket is in the way`, { hint: "remove it" });
  }
  unlinkSync(path);
}

/** answer checks one client's uid and sends it its handout (or nothing). */
function answer(conn: number, uid: number, give: (peer: Peer) => Handout | undefined, log?: Pick<Log, "warn">): void {
  const peer = peerCredentials(conn);
  if (peer.uid !== uid) {
    log?.warn(`refused a socket request from uid ${peer.uid} (pid ${peer.pid}): only uid ${uid} may fetch the relay's sockets`);
    return;
  }
  const handout = give(peer);
  if (handout === undefined) return;
  sendHandout(conn, handout);
}

/** sendHandout sends the meta as data with the descriptors attached (unix(7) SCM_RIGHTS, cmsg(3)). */
export function sendHandout(conn: number, h: Handout): void {
  if (h.fds.length > MAX_FDS) throw new U7sError(`cannot pass ${h.fds.length} descriptors: at most ${MAX_FDS}`);
  const data = new TextEncoder().encode(JSON.stringify(h.meta ?? null));
  if (data.length > MAX_META) throw new U7sError(`cannot pass ${data.length} bytes of meta data: at most ${MAX_META}`);
  const iov = new Uint8Array(16);
  const iovDv = new DataView(iov.buffer);
  putU64(iovDv, 0, addr(data));
  putU64(iovDv, 8, data.length);
  const control = new Uint8Array(cmsgSpace(4 * Math.max(h.fds.length, 1)));
  const msg = new Uint8Array(MSGHDR.size);
  const msgDv = new DataView(msg.buffer);
  putU64(msgDv, MSGHDR.iov, addr(iov));
  putU64(msgDv, MSGHDR.iovlen, 1);
  if (h.fds.length > 0) {
    const cDv = new DataView(control.buffer);
    putU64(cDv, CMSGHDR.len, cmsgLen(4 * h.fds.length));
    cDv.setInt32(CMSGHDR.level, SOL_SOCKET, true);
    cDv.setInt32(CMSGHDR.type, SCM_RIGHTS, true);
    h.fds.forEach((f, i) => cDv.setInt32(CMSGHDR.data + 4 * i, f, true));
    putU64(msgDv, MSGHDR.control, addr(control));
    putU64(msgDv, MSGHDR.controllen, cmsgSpace(4 * h.fds.length));
  }
  // A blocking stream sendmsg(2) sends all of it (unix(7)); anything short (a signal) fails this handout, and the
  // client, which retries, asks again.
  const sent = libc.sendmsg(conn, msg, 0);
  if (sent !== data.length) throw new U7sError(`cannot pass descriptors: ${sent < 0 ? errnoName(errno()) : `sent ${sent} of ${data.length} bytes`}`);
}

/** parseRights reads the descriptors out of a control buffer of controllen bytes (cmsg(3): walk CMSG_NXTHDR). */
export function parseRights(control: Uint8Array, controllen: number): number[] {
  const dv = new DataView(control.buffer, control.byteOffset, control.byteLength);
  const fds: number[] = [];
  let off = 0;
  while (off + CMSGHDR.data <= controllen) {
    const len = getU64(dv, off + CMSGHDR.len);
    if (len < CMSGHDR.data || off + len > controllen) break;
    if (dv.getInt32(off + CMSGHDR.level, true) === SOL_SOCKET && dv.getInt32(off + CMSGHDR.type, true) === SCM_RIGHTS) {
      for (let p = off + CMSGHDR.data; p + 4 <= off + len; p += 4) fds.push(dv.getInt32(p, true));
    }
    off += cmsgSpace(len - CMSGHDR.data);
  }
  return fds;
}

/**
 * fetchSockets connects to serveSockets's socket at path (retrying while it is not there yet, up to
 * timeoutMs) and returns the descriptors (close-on-exec: MSG_CMSG_CLOEXEC) and the meta it got.
 */
export async function fetchSockets(path: string, timeoutMs: number): Promise<Handout> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const fd = libc.socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw new U7sError(`cannot create a unix socket: ${errnoName(errno())}`);
    try {
      // the directory may be missing yet (ENOENT as for a missing socket): then the path is tried as it is
      let short: { name: string; done(): void };
      try {
        short = unixName(path);
      } catch {
        short = { name: path, done: () => {} };
      }
      let connected: number, e: number;
      try {
        const { sa, len } = sockaddrUn(short.name);
        connected = libc.connect(fd, sa, len);
        e = errno();
      } finally {
        short.done();
      }
      if (connected === 0) return await receiveHandout(fd, path, deadline);
      // ENOENT, ECONNREFUSED: the server is not (yet) there; EAGAIN: its backlog is full.
      if (e !== 2 && e !== 111 && e !== EAGAIN) throw new U7sError(`cannot connect to ${path}: ${errnoName(e)}`);
      if (Date.now() >= deadline) {
        throw new U7sError(`cannot fetch the relay's sockets from ${path}: ${errnoName(e)} after ${timeoutMs} ms`, {
          hint: "is `u7s` serving them on the host? (its log says why not)",
        });
      }
    } finally {
      libc.close(fd);
    }
    await Bun.sleep(Math.min(100, Math.max(1, deadline - Date.now())));
  }
}

/** receiveHandout reads one handout from a connected socket until the server closes it. */
async function receiveHandout(fd: number, path: string, deadline: number): Promise<Handout> {
  const data = new Uint8Array(MAX_META + 1);
  const iov = new Uint8Array(16);
  const iovDv = new DataView(iov.buffer);
  const control = new Uint8Array(cmsgSpace(4 * MAX_FDS));
  const msg = new Uint8Array(MSGHDR.size);
  const msgDv = new DataView(msg.buffer);
  let got = 0;
  let fds: number[] = [];
  for (;;) {
    const ev = pollOne(fd, POLLIN, 0);
    if ((ev & (POLLIN | POLLHUP)) === 0) {
      if (Date.now() >= deadline) {
        fds.forEach((f) => libc.close(f));
        throw new U7sError(`cannot fetch the relay's sockets from ${path}: no answer in time`);
      }
      await Bun.sleep(5);
      continue;
    }
    putU64(iovDv, 0, addr(data, got));
    putU64(iovDv, 8, data.length - got);
    putU64(msgDv, MSGHDR.iov, addr(iov));
    putU64(msgDv, MSGHDR.iovlen, 1);
    putU64(msgDv, MSGHDR.control, addr(control));
    putU64(msgDv, MSGHDR.controllen, control.length);
    const n = libc.recvmsg(fd, msg, MSG_CMSG_CLOEXEC);
    if (n < 0) {
      fds.forEach((f) => libc.close(f));
      throw new U7sError(`cannot fetch the relay's sockets from ${path}: ${errnoName(errno())}`);
    }
    fds = fds.concat(parseRights(control, getU64(msgDv, MSGHDR.controllen)));
    if ((msgDv.getInt32(MSGHDR.flags, true) & 0x8) !== 0) { // MSG_CTRUNC: descriptors were lost (recvmsg(2))
      fds.forEach((f) => libc.close(f));
      throw new U7sError(`cannot fetch the relay's sockets from ${path}: more descriptors than ${MAX_FDS}`);
    }
    if (n === 0) break;
    got += n;
    if (got > MAX_META) {
      fds.forEach((f) => libc.close(f));
      throw new U7sError(`cannot fetch the relay's sockets from ${path}: meta data over ${MAX_META} bytes`);
    }
  }
  if (got === 0) {
    throw new U7sError(`the server at ${path} handed out nothing: it refused this user (uid ${process.getuid!()}) or has no sockets yet`, {
      hint: "the socket is served to the user who runs u7s on the host only",
    });
  }
  let meta: unknown;
  try {
    meta = JSON.parse(new TextDecoder().decode(data.subarray(0, got)));
  } catch (err) {
    fds.forEach((f) => libc.close(f));
    throw new U7sError(`cannot fetch the relay's sockets from ${path}: bad meta data: ${String(err)}`);
  }
  return { fds, meta };
}
