// Who holds a busy port: /proc/net/{tcp,udp}{,6} give the socket's owner and inode, /proc/PID/fd
// the process (this user's only). Parsed from recorded /proc text, and once against the real /proc.
import { describe, expect, test } from "bun:test";
import { createServer, type AddressInfo } from "node:net";
import { busyPorts } from "../../../lib/host/ports.ts";
import { describeHolders, parseProcNet, portHolders, type ProcFs } from "../../../lib/host/port-holder.ts";
import { realHost } from "../../../lib/host/probe.ts";
import { resolveNodeConfig } from "../../../lib/config/resolve.ts";
import { FakeHost, RecordingRunner } from "../../fixtures/fakes.ts";

const HEAD_V4 = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";
const HEAD_V6 = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n";
const v4 = (port: number, st: string, uid: number, inode: number) =>
  `   0: 00000000:${port.toString(16).toUpperCase().padStart(4, "0")} 00000000:0000 ${st} 00000000:00000000 00:00000000 00000000  ${uid}        0 ${inode} 1 0000000000000000 100 0 0 10 0\n`;
const v6 = (port: number, st: string, uid: number, inode: number) =>
  `   1: 00000000000000000000000000000000:${port.toString(16).toUpperCase().padStart(4, "0")} 00000000000000000000000000000000:0000 ${st} 00000000:00000000 00:00000000 00000000  ${uid}        0 ${inode} 2 0000000000000000 0\n`;

/** fakeProc is a /proc with the given socket tables and processes (pid -> comm and socket inodes). */
function fakeProc(net: { tcp?: string; tcp6?: string; udp?: string; udp6?: string }, procs: Record<number, { comm: string; inodes: number[] }>): ProcFs {
  const files: Record<string, string> = {
    "/etc/passwd": "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/sh\n",
    "/proc/net/tcp": HEAD_V4 + (net.tcp ?? ""),
    "/proc/net/tcp6": HEAD_V6 + (net.tcp6 ?? ""),
    "/proc/net/udp": HEAD_V4 + (net.udp ?? ""),
    "/proc/net/udp6": HEAD_V6 + (net.udp6 ?? ""),
  };
  for (const [pid, p] of Object.entries(procs)) files[`/proc/${pid}/comm`] = `${p.comm}\n`;
  return {
    readFile: (path) => files[path],
    readdir: (path) => {
      if (path === "/proc") return ["self", "net", ...Object.keys(procs)];
      const m = /^\/proc\/([0-9]+)\/fd$/.exec(path);
      return m ? ["0", "1", "2", ...(procs[Number(m[1])]?.inodes.map((_, i) => String(i + 3)) ?? [])] : [];
    },
    readlink: (path) => {
      const m = /^\/proc\/([0-9]+)\/fd\/([0-9]+)$/.exec(path);
      if (!m) return undefined;
      const i = Number(m[2]);
      if (i < 3) return "/dev/null";
      const inode = procs[Number(m[1])]?.inodes[i - 3];
      return inode === undefined ? undefined : `socket:[${inode}]`;
    },
  };
}

describe("parseProcNet", () => {
  test("reads port (hex), state, uid and inode of IPv4 and IPv6 lines; skips the header and junk", () => {
    expect(parseProcNet(HEAD_V4 + v4(6443, "0A", 1000, 555) + "garbage\n")).toEqual([{ port: 6443, state: "0A", uid: 1000, inode: "555" }]);
    expect(parseProcNet(HEAD_V6 + v6(8472, "07", 0, 77))).toEqual([{ port: 8472, state: "07", uid: 0, inode: "77" }]);
  });
});

describe("portHolders", () => {
  test("a TCP listener of mine on IPv4 and IPv6: one holder with its pid and command; connections on the port do not count", () => {
    const fs = fakeProc({ tcp: v4(6443, "0A", 1000, 11) + v4(6443, "01", 1000, 12), tcp6: v6(6443, "0A", 1000, 13) }, { 42: { comm: "socat", inodes: [11, 13] }, 43: { comm: "curl", inodes: [12] } });
    expect(portHolders(6443, "tcp", fs)).toEqual([{ uid: 1000, user: "alice", pid: 42, command: "socat" }]);
    expect(describeHolders(portHolders(6443, "tcp", fs), 1000)).toBe("held by socat (pid 42)");
  });

  test("a UDP socket of another user: named by user and uid, its process not visible", () => {
    const fs = fakeProc({ udp6: v6(8472, "07", 0, 21) }, { 42: { comm: "socat", inodes: [11] } });
    expect(portHolders(8472, "udp", fs)).toEqual([{ uid: 0, user: "root" }]);
    expect(describeHolders(portHolders(8472, "udp", fs), 1000)).toBe("held by a process of root (uid 0), which you cannot see");
  });

  test("a rootless engine's port forwarder: says a container publishes the port", () => {
    const fs = fakeProc({ tcp: v4(2379, "0A", 1000, 31) }, { 7: { comm: "rootlessport", inodes: [31] } });
    expect(describeHolders(portHolders(2379, "tcp", fs), 1000)).toBe("held by rootlessport (pid 7, a container engine's port forwarder: a container publishes it)");
  });

  test("protocol and port must both match; nobody holding it gives no words", () => {
    const fs = fakeProc({ tcp: v4(8472, "0A", 1000, 11), udp: v4(6443, "07", 1000, 12) }, { 42: { comm: "socat", inodes: [11, 12] } });
    expect(portHolders(8472, "udp", fs)).toEqual([]);
    expect(portHolders(6443, "tcp", fs)).toEqual([]);
    expect(describeHolders([], 1000)).toBeUndefined();
  });
});

describe("on the real /proc", () => {
  test("a port this test process listens on is held by it, by pid", async () => {
    const server = createServer();
    await new Promise<void>((ok) => server.listen({ port: 0, host: "0.0.0.0" }, ok));
    const port = (server.address() as AddressInfo).port;
    try {
      const said = realHost(new RecordingRunner().run).portHolder!(port, "tcp");
      expect(said).toContain(`pid ${process.pid}`);
    } finally {
      server.close();
    }
  });
});

describe("busyPorts", () => {
  test("names who holds a busy port, when the host can tell", async () => {
    class HeldHost extends FakeHost {
      portHolder(port: number, protocol: string) {
        return port === 6443 && protocol === "tcp" ? "held by socat (pid 42)" : undefined;
      }
    }
    const host = new HeldHost({ busyPorts: [6443, 8472] });
    const config = await resolveNodeConfig({ flags: {}, env: { CONTAINER_ENGINE: "docker" }, host });
    expect(await busyPorts(config, host)).toEqual([
      "port 6443/tcp (PORT_KUBE_APISERVER) is already in use on this host, held by socat (pid 42)",
      "port 8472/udp (PORT_FLANNEL) is already in use on this host",
    ]);
  });
});
