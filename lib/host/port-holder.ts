import { readdirSync, readFileSync, readlinkSync } from "node:fs";

/**
 * Who holds a port, as far as this user can see: the kernel lists every socket of this network
 * namespace in /proc/net/{tcp,tcp6,udp,udp6} with its owner's uid and its inode; the process is the
 * one whose /proc/PID/fd/N links to socket:[INODE] (readable for this user's own processes only).
 */

/** ProcFs is the part of /proc that portHolders reads; tests pass a fake. */
export interface ProcFs {
  /** readFile reads a file, undefined when it cannot. */
  readFile(path: string): string | undefined;
  /** readdir lists a directory, [] when it cannot. */
  readdir(path: string): string[];
  /** readlink reads a symlink, undefined when it cannot. */
  readlink(path: string): string | undefined;
}

/** PortHolder is a socket bound to the port: its owner and, when visible, its process. */
export interface PortHolder {
  uid: number;
  /** user: the owner's name from /etc/passwd, when listed there. */
  user?: string;
  pid?: number;
  /** command: the process's name (/proc/PID/comm). */
  command?: string;
}

/** ProcSocket is one line of /proc/net/{tcp,udp}{,6}. */
export interface ProcSocket {
  port: number;
  /** state: the kernel's TCP state in hex (0A = listening; UDP sockets show 07). */
  state: string;
  uid: number;
  inode: string;
}

/** parseProcNet reads /proc/net/{tcp,udp}{,6}: local port, state, uid and inode of every socket. */
export function parseProcNet(text: string): ProcSocket[] {
  const out: ProcSocket[] = [];
  for (const line of text.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const local = f[1]!;
    const port = parseInt(local.slice(local.lastIndexOf(":") + 1), 16);
    const uid = Number(f[7]);
    if (!Number.isInteger(port) || !Number.isInteger(uid) || !/^[0-9]+$/.test(f[9]!)) continue;
    out.push({ port, state: f[3]!.toUpperCase(), uid, inode: f[9]! });
  }
  return out;
}

const TCP_LISTEN = "0A";

/**
 * portHolders lists who holds a TCP or UDP port on this host's IPv4 or IPv6: for TCP the listening
 * sockets (any socket bound to it when none listens), for UDP every socket bound to it. Sockets of
 * other users are reported by uid only: their processes are not visible.
 */
export function portHolders(port: number, protocol: "tcp" | "udp", fs: ProcFs): PortHolder[] {
  const sockets = [protocol, `${protocol}6`].flatMap((f) => parseProcNet(fs.readFile(`/proc/net/${f}`) ?? "")).filter((s) => s.port === port && s.inode !== "0");
  const listening = protocol === "tcp" ? sockets.filter((s) => s.state === TCP_LISTEN) : sockets;
  const chosen = listening.length > 0 ? listening : sockets;
  if (chosen.length === 0) return [];
  const inodes = new Map(chosen.map((s) => [`socket:[${s.inode}]`, s]));
  const users = passwdNames(fs.readFile("/etc/passwd") ?? "");
  const found = new Map<string, PortHolder>(); // by inode
  for (const pid of fs.readdir("/proc").filter((p) => /^[0-9]+$/.test(p))) {
    for (const fd of fs.readdir(`/proc/${pid}/fd`)) {
      const link = fs.readlink(`/proc/${pid}/fd/${fd}`);
      const s = link === undefined ? undefined : inodes.get(link);
      if (!s || found.has(s.inode)) continue;
      const command = fs.readFile(`/proc/${pid}/comm`)?.trim();
      found.set(s.inode, { uid: s.uid, user: users.get(s.uid), pid: Number(pid), ...(command ? { command } : {}) });
    }
    if (found.size === inodes.size) break;
  }
  const holders: PortHolder[] = [];
  const seen = new Set<string>();
  for (const s of chosen) {
    const h = found.get(s.inode) ?? { uid: s.uid, user: users.get(s.uid) };
    const key = h.pid !== undefined ? `pid ${h.pid}` : `uid ${h.uid}`;
    if (seen.has(key)) continue; // one process may hold the port on IPv4 and IPv6
    seen.add(key);
    holders.push(h);
  }
  return holders;
}

/** passwdNames maps uids to user names from /etc/passwd. */
function passwdNames(text: string): Map<number, string> {
  const names = new Map<number, string>();
  for (const line of text.split("\n")) {
    const [name, , uid] = line.split(":");
    if (name && uid && /^[0-9]+$/.test(uid) && !names.has(Number(uid))) names.set(Number(uid), name);
  }
  return names;
}

// What rootless engines run to publish container ports: a port they hold belongs to a container.
const FORWARDERS = ["rootlesskit", "rootlessport", "docker-proxy", "slirp4netns", "pasta", "pasta.avx2"];

/** describeHolders says who holds a port in words, e.g. "held by socat (pid 4242)"; undefined when nobody is visible. */
export function describeHolders(holders: readonly PortHolder[], myUid: number): string | undefined {
  if (holders.length === 0) return undefined;
  const words = holders.map((h) => {
    const owner = `${h.user ?? "uid"}${h.user ? ` (uid ${h.uid})` : ` ${h.uid}`}`;
    if (h.pid === undefined) {
      return h.uid === myUid ? `a process of yours (uid ${h.uid})` : `a process of ${owner}, which you cannot see`;
    }
    const forwarder = h.command !== undefined && FORWARDERS.includes(h.command) ? ", a container engine's port forwarder: a container publishes it" : "";
    return `${h.command ?? "a process"} (pid ${h.pid}${h.uid === myUid ? "" : `, ${owner}`}${forwarder})`;
  });
  return `held by ${words.join(" and ")}`;
}

/** realProcFs reads the real /proc (and /etc/passwd). */
export const realProcFs: ProcFs = {
  readFile(path) {
    try {
      return readFileSync(path, "utf8");
    } catch {
      return undefined;
    }
  },
  readdir(path) {
    try {
      return readdirSync(path);
    } catch {
      return [];
    }
  },
  readlink(path) {
    try {
      return readlinkSync(path);
    } catch {
      return undefined;
    }
  },
};
