// The busy-port check binds real sockets: a port held by another program on IPv4 only, on IPv6
// only ([::]), over TCP or UDP, is busy; a privileged port gets its own hint.
import { describe, expect, test } from "bun:test";
import { createSocket, type Socket } from "node:dgram";
import { createServer, type AddressInfo, type Server } from "node:net";
import { portHint } from "../../../lib/host/ports.ts";
import { realHost } from "../../../lib/host/probe.ts";
import { RecordingRunner } from "../../fixtures/fakes.ts";

const host = realHost(new RecordingRunner().run);

function holdTcp(address: string): Promise<Server> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen({ port: 0, host: address, ipv6Only: address === "::" }, () => resolve(s));
  });
}
function holdUdp(address: string): Promise<Socket> {
  return new Promise((resolve) => {
    const s = createSocket({ type: address === "::" ? "udp6" : "udp4", ipv6Only: address === "::" });
    s.bind(0, address, () => resolve(s));
  });
}

describe("portFree", () => {
  test.each(["0.0.0.0", "::"])("a TCP port held only on %s is in use", async (address) => {
    const s = await holdTcp(address);
    const port = (s.address() as AddressInfo).port;
    try {
      expect(await host.portFree(port, "tcp")).toBe("in-use");
    } finally {
      s.close();
    }
  });

  test.each(["0.0.0.0", "::"])("a UDP port held only on %s is in use", async (address) => {
    const s = await holdUdp(address);
    const port = s.address().port;
    try {
      expect(await host.portFree(port, "udp")).toBe("in-use");
    } finally {
      s.close();
    }
  });

  test("a port nobody holds is free, for TCP and UDP (the check itself holds nothing afterwards)", async () => {
    const s = await holdTcp("0.0.0.0");
    const port = (s.address() as AddressInfo).port;
    await new Promise((r) => s.close(r));
    expect(await host.portFree(port, "tcp")).toBe("free");
    expect(await host.portFree(port, "udp")).toBe("free");
    expect(await host.portFree(port, "tcp")).toBe("free");
  });
});

describe("portHint", () => {
  test("privileged ports: how to choose another or allow them; busy ones: how to free or move them", () => {
    expect(portHint(["port 443/tcp (PORT_KUBE_APISERVER) is privileged and cannot be published by a rootless engine"])).toContain("net.ipv4.ip_unprivileged_port_start");
    expect(portHint(["port 6443/tcp (PORT_KUBE_APISERVER) is already in use on this host"])).not.toContain("unprivileged");
  });
});
