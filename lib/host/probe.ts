import { existsSync, readFileSync } from "node:fs";
import { hostname as osHostname, networkInterfaces, release, userInfo } from "node:os";
import type { Runner } from "../exec.ts";
import { defaultInterfaceFromProcRoute, interfaceIpFromIpJson, routeSourceFromIpJson } from "../net.ts";
import { describeHolders, portHolders, realProcFs } from "./port-holder.ts";

/** HostProbe is everything u7s asks the host; tests pass a fake so no host is needed. */
export interface HostProbe {
  /** hostname is what `hostname` prints. */
  hostname(): string;
  /** which finds a binary on PATH. */
  which(bin: string): string | undefined;
  /** routeSourceIp is the source address of the route to 1.0.0.0 (`ip -j route get 1` → prefsrc). */
  routeSourceIp(): Promise<string | undefined>;
  /** interfaceIp is the first IPv4 address of a named interface. */
  interfaceIp(ifname: string): Promise<string | undefined>;
  /** exists tells whether a path exists on the host. */
  exists(path: string): boolean;
  /** readFile reads a small host file, undefined when unreadable. */
  readFile(path: string): string | undefined;
  /** user is the invoking user's name and uid. */
  user(): { name: string; uid: number };
  /** portFree tries to bind a host port on all addresses, IPv4 and IPv6, as the engine's port forwarder will. */
  portFree(port: number, protocol: "tcp" | "udp"): Promise<PortCheck>;
  /** portHolder says who holds a busy port ("held by socat (pid 42)"), when this user can tell. */
  portHolder?(port: number, protocol: "tcp" | "udp"): string | undefined;
  /** kernelConfig is the running kernel's build configuration (/proc/config.gz or /boot/config-RELEASE). */
  kernelConfig(): string | undefined;
  /** kernelRelease is `uname -r`. */
  kernelRelease(): string;
}

/** PortCheck is the outcome of trying to bind a port: free, in use, or not allowed for this user. */
export type PortCheck = "free" | "in-use" | "denied";

/** bindOnce tries to bind one address family's wildcard address; undefined when the host lacks that family. */
async function bindOnce(port: number, protocol: "tcp" | "udp", family: 4 | 6): Promise<PortCheck | undefined> {
  const verdict = (err: NodeJS.ErrnoException): PortCheck | undefined => {
    if (err.code === "EACCES" || err.code === "EPERM") return "denied";
    // no IPv6 on this host (disabled, or no address): nothing can hold the port there
    if (err.code === "EAFNOSUPPORT" || err.code === "EADDRNOTAVAIL" || err.code === "EPROTONOSUPPORT") return undefined;
    return "in-use";
  };
  const host = family === 4 ? "0.0.0.0" : "::";
  // node:dgram and node:net are loaded when needed: at start-up they would cost every command ~4 ms
  const { createSocket } = await import("node:dgram");
  const { createServer } = await import("node:net");
  return new Promise((resolve) => {
    if (protocol === "udp") {
      let sock;
      try {
        sock = createSocket({ type: family === 4 ? "udp4" : "udp6", ipv6Only: family === 6 });
      } catch {
        resolve(undefined);
        return;
      }
      sock.once("error", (err) => {
        try {
          sock.close();
        } catch {
          // never bound
        }
        resolve(verdict(err));
      });
      sock.bind(port, host, () => sock.close(() => resolve("free")));
      return;
    }
    const server = createServer();
    server.once("error", (err) => resolve(verdict(err)));
    // ipv6Only: a program holding only [::]:PORT must be seen, and 0.0.0.0 is tried on its own.
    server.listen({ port, host, exclusive: true, ipv6Only: family === 6 }, () => server.close(() => resolve("free")));
  });
}

/**
 * tryBind tells whether the engine's port forwarder could publish a port: it binds the wildcard
 * address of IPv4 and of IPv6 (a program may hold the port on either family only).
 */
async function tryBind(port: number, protocol: "tcp" | "udp"): Promise<PortCheck> {
  const v4 = await bindOnce(port, protocol, 4);
  if (v4 === "denied" || v4 === "in-use") return v4;
  return (await bindOnce(port, protocol, 6)) ?? "free";
}

/** udpRouteSource asks the kernel which source address it would use towards 1.0.0.0 (no packet is sent). */
async function udpRouteSource(): Promise<string | undefined> {
  const { createSocket } = await import("node:dgram");
  return new Promise((resolve) => {
    const sock = createSocket("udp4");
    const done = (ip: string | undefined) => {
      try {
        sock.close();
      } catch {
        // already closed
      }
      resolve(ip);
    };
    sock.on("error", () => done(undefined));
    try {
      sock.connect(9, "1.0.0.0", () => {
        try {
          done(sock.address().address);
        } catch {
          done(undefined);
        }
      });
    } catch {
      done(undefined);
    }
  });
}

function osInterfaceIp(ifname: string): string | undefined {
  return networkInterfaces()[ifname]?.find((a) => a.family === "IPv4" && !a.internal)?.address;
}

/** realHost is the production HostProbe; it runs `ip` through the given runner. */
export function realHost(runner: Runner): HostProbe {
  const which = (bin: string) => Bun.which(bin, { PATH: process.env.PATH ?? "" }) ?? undefined;
  const readFile = (path: string) => {
    try {
      return readFileSync(path, "utf8");
    } catch {
      return undefined;
    }
  };
  return {
    hostname: () => osHostname(),
    which,
    async routeSourceIp() {
      // A UDP socket connected to 1.0.0.0 gets the source address the kernel picks for that route:
      // the same lookup as `ip -j route get 1` (upstream's), without starting a process (~10 ms of
      // every command that resolves settings). Then `ip`; then the default route's interface.
      const viaSocket = await udpRouteSource();
      if (viaSocket && viaSocket !== "0.0.0.0") return viaSocket;
      if (which("ip")) {
        const r = await runner(["ip", "-j", "route", "get", "1"]);
        const ip = r.exitCode === 0 ? routeSourceFromIpJson(r.stdout) : undefined;
        if (ip) return ip;
      }
      const dev = defaultInterfaceFromProcRoute(readFile("/proc/net/route") ?? "");
      return dev ? osInterfaceIp(dev) : undefined;
    },
    async interfaceIp(ifname) {
      if (which("ip")) {
        const r = await runner(["ip", "-j", "-4", "addr", "show", "dev", ifname]);
        if (r.exitCode === 0) return interfaceIpFromIpJson(r.stdout, ifname);
      }
      return osInterfaceIp(ifname);
    },
    exists: (path) => existsSync(path),
    readFile,
    user: () => {
      const u = userInfo();
      return { name: u.username, uid: u.uid };
    },
    portFree: tryBind,
    portHolder: (port, protocol) => describeHolders(portHolders(port, protocol, realProcFs), userInfo().uid),
    kernelConfig() {
      try {
        return new TextDecoder().decode(Bun.gunzipSync(readFileSync("/proc/config.gz")));
      } catch {
        return readFile(`/boot/config-${release()}`);
      }
    },
    kernelRelease: () => release(),
  };
}
