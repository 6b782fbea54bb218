/**
 * The VXLAN relay (issue 17, lib/relay/) on the two test hosts (tests/setup-hosts.sh: Docker on A,
 * Podman on B), with the nodes' real flannel.1 as tests/e2e/two-hosts.test.ts sets it up
 * (FLANNEL_VXLAN_SCRIPT): Flannel's VXLAN leaves each node through the host socket u7s's host side
 * made (not the engine's network) and arrives through it (the engine publishes no PORT_FLANNEL).
 * Every check that traffic went through the relay reads the relay's own counters (`u7s status --json`).
 * Tenants 0, 20 and 21 on A and B are this file's; every node is removed before and after.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  describeResult,
  downOverlayPair,
  eventually,
  inHostNetns,
  loadHostsEnv,
  removeHostNode,
  runCommand,
  runOnHost,
  runU7sOnHost,
  type CommandResult,
  type HostsEnv,
  type TestHost,
  upOverlayPair,
  type VtepSide,
} from "./harness.ts";

const TIMEOUT_MS = 600_000;
/** RELAY_ON: u7s's default (the harness turns the relay off for every other suite). */
const RELAY_ON = { U7S_VXLAN_RELAY: "" };

let env: HostsEnv;
/** TENANTS_OWNED: this file's tenants on A and B (other suites use other tenants of the same hosts at the same time). */
const TENANTS_OWNED = ["0", "20", "21"];
/** removeOwnNodes removes this file's nodes (and with `down`, their host sides) on A and B, nothing else. */
async function removeOwnNodes(): Promise<void> {
  for (const host of [env.a, env.b]) {
    for (const tenant of TENANTS_OWNED) {
      const nodeName = `u7s-${host.hostname}${tenant === "0" ? "" : `-t${tenant}`}`;
      await removeHostNode(host, nodeName, { U7S_TENANT: tenant, ...RELAY_ON });
    }
  }
}
beforeAll(async () => {
  env = loadHostsEnv();
  await removeOwnNodes();
}, TIMEOUT_MS);
afterAll(removeOwnNodes, TIMEOUT_MS);

async function u7s(host: TestHost, args: readonly string[], extraEnv: Record<string, string> = {}): Promise<CommandResult> {
  const r = await runU7sOnHost(host, args, { env: extraEnv, timeoutMs: 240_000 });
  if (r.exitCode !== 0) throw new Error(`on host ${host.id} (${host.engine}): ${describeResult(["u7s", ...args], r)}`);
  return r;
}

/** exec runs a shell script in a side's node and returns stdout. */
async function nodeSh(side: VtepSide, script: string): Promise<string> {
  return (await u7s(side.host, ["exec", "--", "sh", "-c", script], side.env)).stdout;
}

interface Vxlan {
  path: "relay" | "engine";
  why: string;
  hostSide: { pid: number; socket: string } | null;
  node: { pid: number; peers: Record<string, number>; stats: { egress: { packets: number }; ingress: { packets: number }; dropped: { unknownPeer: number; notVxlan: number } } } | null;
}

/** status is `u7s status --json` of a side's node. */
async function status(side: VtepSide): Promise<{ vxlan: Vxlan; node: { ports: { host: number; protocol: string }[] } }> {
  return JSON.parse((await u7s(side.host, ["status", "--json"], side.env)).stdout);
}

/** relayUp waits until a side's node uses the relay path with the other side's host as a peer, and returns its report. */
async function relayUp(side: VtepSide, peer: VtepSide, seconds = 60): Promise<Vxlan> {
  return eventually(`host ${side.host.id}: the relay path with peer ${peer.host.ip}`, async () => {
    const v = (await status(side)).vxlan;
    if (v.path === "relay" && v.node && peer.host.ip in v.node.peers) return v;
    throw new Error(`u7s status --json .vxlan: ${JSON.stringify({ ...v, node: v.node && { pid: v.node.pid, peers: v.node.peers } })}`);
  }, seconds);
}

/** counters are the relay's egress and ingress datagram counts on a side. */
async function counters(side: VtepSide): Promise<{ egress: number; ingress: number }> {
  const s = (await status(side)).vxlan.node?.stats;
  return { egress: s?.egress.packets ?? 0, ingress: s?.ingress.packets ?? 0 };
}

/** ICMP_ECHO: an ICMP echo request (id 0x7537, seq 1, payload "u7s-ping") as printf escapes, and the reply's tail to match. */
const ICMP = (() => {
  const payload = [...new TextEncoder().encode("u7s-ping")];
  const sum = (b: number[]) => {
    let s = 0;
    for (let i = 0; i < b.length; i += 2) s += (b[i]! << 8) + (b[i + 1] ?? 0);
    while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
    return ~s & 0xffff;
  };
  const head = (c: number) => [8, 0, c >> 8, c & 0xff, 0x75, 0x37, 0, 1];
  const req = [...head(sum([...head(0), ...payload])), ...payload];
  return { printf: req.map((b) => `\\${b.toString(8).padStart(3, "0")}`).join(""), reply: `7537 0001 ${payload.map((b) => b.toString(16).padStart(2, "0")).join("")}`.replace(/ /g, "") };
})();

/** ping sends ICMP echo requests from one node's pod address to the other's (raw sockets through socat) and expects a reply. */
async function ping(from: VtepSide, to: VtepSide): Promise<void> {
  const out = await nodeSh(
    from,
    `rm -f /tmp/u7s-icmp; (timeout 4 socat -u IP4-RECV:1,range=${to.podAddr}/32 OPEN:/tmp/u7s-icmp,creat >/dev/null 2>&1 &); sleep 0.3; ` +
      `for i in 1 2 3; do printf '${ICMP.printf}' | socat -u - IP4-SENDTO:${to.podAddr}:1; sleep 0.5; done; sleep 2.5; od -An -v -tx1 /tmp/u7s-icmp | tr -d ' \\n'`,
  );
  expect(out.trim(), `ICMP echo from host ${from.host.id} to host ${to.host.id}`).toContain(ICMP.reply);
}

/** transfer sends 8 MiB over TCP between the pod addresses and compares SHA-256 sums; during() runs while it flows. */
async function transfer(from: VtepSide, to: VtepSide, during?: () => Promise<void>): Promise<void> {
  const port = 5001;
  const receiver = nodeSh(to, `timeout 90 socat -u TCP-LISTEN:${port},bind=${to.podAddr},reuseaddr - | sha256sum`);
  const sender = nodeSh(
    from,
    `set -e; head -c 8388608 /dev/urandom > /tmp/u7s-payload; sha256sum < /tmp/u7s-payload; ` +
      `timeout 80 socat -u OPEN:/tmp/u7s-payload TCP:${to.podAddr}:${port},bind=${from.podAddr},connect-timeout=5,retry=20,interval=0.5; rm -f /tmp/u7s-payload`,
  );
  if (during) {
    await Bun.sleep(1_500);
    await during();
  }
  const [sent, received] = await Promise.all([sender, receiver]);
  expect(received.trim().split(/\s+/)[0], `TCP from host ${from.host.id} to host ${to.host.id}`).toBe(sent.trim().split(/\s+/)[0]!);
}

/** udp sends five datagrams from one node's pod address to the other's and expects them there. */
async function udp(from: VtepSide, to: VtepSide): Promise<void> {
  const port = 5002;
  const receiver = nodeSh(to, `rm -f /tmp/u7s-udp; timeout 6 socat -u UDP4-RECV:${port},bind=${to.podAddr} OPEN:/tmp/u7s-udp,creat,append >/dev/null 2>&1; cat /tmp/u7s-udp`);
  await Bun.sleep(800);
  await nodeSh(from, `for i in 1 2 3 4 5; do echo u7s-udp-$i | socat -u - UDP4-SENDTO:${to.podAddr}:${port},bind=${from.podAddr}; sleep 0.3; done`);
  expect((await receiver).match(/u7s-udp-\d/g)?.length ?? 0, `UDP from host ${from.host.id} to host ${to.host.id}`).toBeGreaterThanOrEqual(4);
}

/** grew expects a side's relay to have carried datagrams both ways since before (the node relay writes its counters every 2 s). */
async function grew(side: VtepSide, before: { egress: number; ingress: number }): Promise<void> {
  let after = before;
  await eventually(`host ${side.host.id}: the relay's counters to grow both ways from ${JSON.stringify(before)}`, async () => {
    after = await counters(side);
    return after.egress > before.egress && after.ingress > before.ingress ? true : undefined;
  }, 15).catch(() => undefined);
  expect({ host: side.host.id, egress: after.egress > before.egress, ingress: after.ingress > before.ingress }).toEqual({ host: side.host.id, egress: true, ingress: true });
}

/** steeringRules lists the node's iptables rules of u7s's chain (nat and raw). */
async function steeringRules(side: VtepSide): Promise<string> {
  return nodeSh(side, "iptables -t nat -S 2>/dev/null | grep U7S-VXLAN-RELAY; iptables -t raw -S 2>/dev/null | grep U7S-VXLAN-RELAY; true");
}

/** TENANTS: upstream's ports (tenant 0) and a tenant's. */
const TENANTS: [string, Record<string, string>][] = [
  ["default ports (tenant 0)", {}],
  ["tenant 20's ports", { U7S_TENANT: "20" }],
];

describe("the VXLAN relay between host A (Docker) and host B (Podman)", () => {
  test.each(TENANTS)("ICMP, TCP and UDP both ways go through the relay; the engine publishes no PORT_FLANNEL (%s)", async (_label, tenant) => {
    const { a, b } = await upOverlayPair(env, { env: { ...tenant, ...RELAY_ON }, onlyOwnNodes: true });
    try {
      for (const [self, peer] of [[a, b], [b, a]] as const) {
        await relayUp(self, peer);
        const s = await status(self);
        // the engine does not publish PORT_FLANNEL; the host side holds HOST_IP:PORT_FLANNEL in the host's namespace
        expect(s.node.ports.filter((p) => p.protocol === "udp")).toEqual([]);
        const ss = await runCommand(inHostNetns(self.host, ["ss", "-Hlunp", `sport = :${self.portFlannel}`]));
        expect(ss.stdout).toContain(`${self.host.ip}:${self.portFlannel}`);
        expect(ss.stdout).toContain(`pid=${s.vxlan.hostSide!.pid},`);
      }
      const before = { a: await counters(a), b: await counters(b) };
      await ping(a, b);
      await ping(b, a);
      await transfer(a, b);
      await transfer(b, a);
      await udp(a, b);
      await udp(b, a);
      await grew(a, before.a);
      await grew(b, before.b);
    } finally {
      await downOverlayPair([a, b], { onlyOwnNodes: true });
    }
  }, TIMEOUT_MS);

  test("the relay relays only to the cluster's hosts and only PORT_FLANNEL: other datagrams are not relayed", async () => {
    const { a, b } = await upOverlayPair(env, { env: { U7S_TENANT: "21", ...RELAY_ON }, onlyOwnNodes: true });
    try {
      await relayUp(a, b);
      const before = await counters(a);
      // from the node: to a host that is no peer, and to the peer on another port
      await nodeSh(a, `for i in 1 2 3; do echo x | socat -u - UDP4-SENDTO:10.213.0.99:${a.portFlannel}; echo x | socat -u - UDP4-SENDTO:${b.host.ip}:${a.portFlannel + 1}; done`);
      // into the host socket: a VXLAN-looking datagram from an address that is no peer (the hosts' gateway)
      const vxlan = "\\010\\000\\000\\000\\000\\000\\001\\000" + "\\000".repeat(60);
      const gw = env.raw.U7S_HOSTS_NETNS ?? "u7s-hosts-net";
      const sent = await runCommand(["nsenter", `--net=/run/netns/${gw}`, "sh", "-c", `for i in 1 2 3; do printf '${vxlan}' | socat -u - UDP4-SENDTO:${a.host.ip}:${a.portFlannel}; done`]);
      expect(sent.exitCode).toBe(0);
      const report = await eventually("the relay's counters to show the dropped datagrams", async () => {
        const v = (await status(a)).vxlan;
        return v.node && v.node.stats.dropped.unknownPeer >= 3 ? v : undefined;
      }, 15);
      // none of the six went out through the relay (B's flannel.1 may send A a datagram of its own meanwhile: ingress is not compared)
      expect(report.node!.stats.egress.packets - before.egress).toBeLessThan(3);
      // and the redirect rules name only the peer
      const rules = await steeringRules(a);
      expect(rules).toContain(`-d ${b.host.ip}/32`);
      expect(rules).not.toContain("10.213.0.99");
    } finally {
      await downOverlayPair([a, b], { onlyOwnNodes: true });
    }
  }, TIMEOUT_MS);

  test("killing the node relay keeps traffic flowing and it comes back; stopping it takes its rules out (fallback to the engine)", async () => {
    const { a, b } = await upOverlayPair(env, { env: { U7S_TENANT: "21", ...RELAY_ON }, onlyOwnNodes: true });
    try {
      const first = await relayUp(a, b);
      // SIGKILL in the middle of a TCP transfer: the transfer completes, the relay is back (another pid)
      await transfer(a, b, async () => {
        await u7s(a.host, ["exec", "--", "systemctl", "kill", "-s", "KILL", "u7s-vxlan-relay"], a.env);
      });
      const again = await relayUp(a, b);
      expect(again.node!.pid).not.toBe(first.node!.pid);
      // the unit's ExecStopPost took the killed relay's rules out before systemd started it again
      const journal = await nodeSh(a, "journalctl -u u7s-vxlan-relay --no-pager -o cat");
      expect(journal).toContain("steering rules removed: VXLAN leaves through the engine's network");
      const before = await counters(a);
      await ping(a, b);
      await grew(a, before);
      // stopped: ExecStopPost took the rules out, and egress leaves through the engine's network
      await u7s(a.host, ["exec", "--", "systemctl", "stop", "u7s-vxlan-relay"], a.env);
      expect(await steeringRules(a)).toBe("");
      const stopped = (await status(a)).vxlan;
      expect(stopped.path).toBe("engine");
      // A's datagrams now arrive at B from A's engine (slirp4netns): B's relay still takes them
      const bBefore = await counters(b);
      await nodeSh(a, `for i in 1 2 3; do echo u7s | socat -u - UDP4-SENDTO:${b.podAddr}:5003,bind=${a.podAddr}; sleep 0.2; done`);
      await eventually("B's relay to count A's datagrams that came through A's engine", async () => ((await counters(b)).ingress > bBefore.ingress ? true : undefined), 15);
      await u7s(a.host, ["exec", "--", "systemctl", "start", "u7s-vxlan-relay"], a.env);
      await relayUp(a, b);
      await ping(a, b);
      await ping(b, a);
    } finally {
      await downOverlayPair([a, b], { onlyOwnNodes: true });
    }
  }, TIMEOUT_MS);

  test("node restart on each host: the relay is back by itself and carries traffic both ways", async () => {
    const { a, b } = await upOverlayPair(env, { env: { U7S_TENANT: "20", ...RELAY_ON }, onlyOwnNodes: true });
    try {
      await relayUp(a, b);
      await relayUp(b, a);
      for (const side of [a, b]) {
        const hostPid = (await status(side)).vxlan.hostSide!.pid;
        const r = await runOnHost(side.host, [side.host.engine, "restart", side.nodeName], { timeoutMs: 120_000 });
        expect(r.exitCode, describeResult([side.host.engine, "restart", side.nodeName], r)).toBe(0);
        // flannel.1 lives in the node's namespace: Flannel makes it again after a restart; here the test does
        await redoFlannel(a, b);
        const v = await relayUp(side, side === a ? b : a, 90);
        expect(v.hostSide!.pid).toBe(hostPid);
      }
      const before = { a: await counters(a), b: await counters(b) };
      await ping(a, b);
      await ping(b, a);
      await transfer(b, a);
      await grew(a, before.a);
      await grew(b, before.b);
    } finally {
      await downOverlayPair([a, b], { onlyOwnNodes: true });
    }
  }, TIMEOUT_MS);

  test("engine restart on host A (Docker): the host side survives, the node comes back with the relay", async () => {
    const { a, b } = await upOverlayPair(env, { env: { U7S_TENANT: "20", ...RELAY_ON }, onlyOwnNodes: true });
    try {
      await relayUp(a, b);
      const hostPid = (await status(a)).vxlan.hostSide!.pid;
      const started = await startedAt(a);
      await restartDocker(a.host);
      await eventually("node A running again after the engine restart", async () => ((await status(a)).vxlan.node ? true : undefined), 120);
      expect(await startedAt(a)).not.toBe(started);
      await redoFlannel(a, b);
      const v = await relayUp(a, b, 90);
      expect(v.hostSide!.pid).toBe(hostPid);
      const before = await counters(a);
      await ping(a, b);
      await ping(b, a);
      await grew(a, before);
    } finally {
      await downOverlayPair([a, b], { onlyOwnNodes: true });
    }
  }, TIMEOUT_MS);

  test("engine restart on host B (Podman): the host side survives, the node comes back with the relay", async () => {
    const { a, b } = await upOverlayPair(env, { env: { U7S_TENANT: "20", ...RELAY_ON }, onlyOwnNodes: true });
    try {
      await relayUp(b, a);
      const hostPid = (await status(b)).vxlan.hostSide!.pid;
      const started = await startedAt(b);
      await restartPodman(b.host);
      expect(await startedAt(b)).not.toBe(started);
      await eventually("node B running again after the engine restart", async () => ((await status(b)).vxlan.node ? true : undefined), 120);
      await redoFlannel(a, b);
      const v = await relayUp(b, a, 90);
      expect(v.hostSide!.pid).toBe(hostPid);
      const before = await counters(b);
      await ping(b, a);
      await ping(a, b);
      await grew(b, before);
    } finally {
      await downOverlayPair([a, b], { onlyOwnNodes: true });
    }
  }, TIMEOUT_MS);

  test("the unix socket is 0600 and refuses another user", async () => {
    const { a, b } = await upOverlayPair(env, { env: { U7S_TENANT: "21", ...RELAY_ON }, onlyOwnNodes: true });
    try {
      const v = await relayUp(a, b);
      const socket = v.hostSide!.socket;
      const st = await runCommand(["stat", "-c", "%a %U %F", socket]);
      expect(st.stdout.trim()).toBe(`600 ${a.host.user} socket`);
      // another user cannot connect (unix(7): connecting needs write permission on the socket)
      const other = await runCommand(["runuser", "-u", env.b.user, "--", "socat", "-u", `UNIX-CONNECT:${socket}`, "-"], { timeoutMs: 10_000 });
      expect(other.exitCode).not.toBe(0);
      expect(other.stderr).toMatch(/Permission denied/);
      // root gets past the file mode, not past the uid check (SO_PEERCRED): no socket, and the host side says so
      const root = await runCommand(["socat", "-u", `UNIX-CONNECT:${socket}`, "-"], { timeoutMs: 10_000 });
      expect(root.stdout).toBe("");
      const log = await runCommand(["cat", `${a.host.home}/.local/state/u7s/${a.host.hostname}/${a.nodeName}/vxlan-relay.log`]);
      expect(log.stdout).toMatch(/uid 0/);
    } finally {
      await downOverlayPair([a, b], { onlyOwnNodes: true });
    }
  }, TIMEOUT_MS);

  test("a relay host and a plain host (--vxlan-relay=off) in one cluster: traffic both ways", async () => {
    const { a, b } = await upOverlayPair(env, { env: { U7S_TENANT: "21", ...RELAY_ON }, onlyOwnNodes: true });
    try {
      // B again, without the relay: the engine publishes PORT_FLANNEL
      await u7s(b.host, ["up", "--no-init", "--recreate", "--vxlan-relay=off", "--image", env.clusterImage ?? env.testImage], b.env);
      await redoFlannel(a, b);
      const plain = await status({ ...b, env: { ...b.env, U7S_VXLAN_RELAY: "off" } });
      expect(plain.vxlan.path).toBe("engine");
      expect(plain.vxlan.why).toContain("U7S_VXLAN_RELAY=off");
      expect(plain.node.ports).toContainEqual(expect.objectContaining({ host: b.portFlannel, protocol: "udp" }));
      await relayUp(a, b);
      const before = await counters(a);
      await ping(a, b);
      await ping(b, a);
      await transfer(a, b);
      await transfer(b, a);
      await grew(a, before);
    } finally {
      await downOverlayPair([a, b], { onlyOwnNodes: true });
    }
  }, TIMEOUT_MS);
});

/** startedAt is when the engine last started a side's node container. */
async function startedAt(side: VtepSide): Promise<string> {
  const argv = [side.host.engine, "inspect", "--format", "{{.State.StartedAt}}", side.nodeName];
  const r = await runOnHost(side.host, argv);
  expect(r.exitCode, describeResult(argv, r)).toBe(0);
  return r.stdout.trim();
}

/** redoFlannel sets up flannel.1 in both nodes again (a restarted node has none; Flannel would make it). */
async function redoFlannel(a: VtepSide, b: VtepSide): Promise<void> {
  const { FLANNEL_VXLAN_SCRIPT } = await import("./harness.ts");
  for (const [self, peer] of [[a, b], [b, a]] as const) {
    await eventually(`flannel.1 in node ${self.nodeName}`, async () => {
      const r = await runU7sOnHost(self.host, ["exec", "--", "sh", "-c", FLANNEL_VXLAN_SCRIPT, "flannel-vxlan", self.nodeIp, String(self.portFlannel), self.podAddr, self.mac, peer.podAddr, peer.mac, peer.host.ip], { env: self.env, timeoutMs: 60_000 });
      return r.exitCode === 0 ? true : undefined;
    }, 120);
  }
}

/**
 * restartPodman restarts host's rootless Podman as far as it has an engine: `podman system migrate` stops
 * every container and the pause process that holds the user namespace (podman-system-migrate(1)), then
 * the containers with restart policy always start again as podman-restart.service does at boot
 * (`podman start --all --filter restart-policy=always`).
 */
async function restartPodman(host: TestHost): Promise<void> {
  for (const argv of [["podman", "system", "migrate"], ["podman", "start", "--all", "--filter", "restart-policy=always"]]) {
    const r = await runOnHost(host, argv, { timeoutMs: 180_000 });
    expect(r.exitCode, describeResult(argv, r)).toBe(0);
  }
}

/** restartDocker restarts host's rootless dockerd as tests/setup-hosts.sh starts it (the node has restart policy always). */
async function restartDocker(host: TestHost): Promise<void> {
  const uid = env.raw[`U7S_HOST_${host.id.toUpperCase()}_UID`];
  const pidFile = `/run/user/${uid}/docker.pid`;
  const pid = (await runCommand(["cat", pidFile])).stdout.trim();
  expect(pid).toMatch(/^\d+$/);
  await runCommand(["kill", "-TERM", pid]);
  await eventually("dockerd to exit", async () => ((await runCommand(["kill", "-0", pid])).exitCode !== 0 ? true : undefined), 60);
  const log = `${env.raw.U7S_HOSTS_LOG_DIR ?? "/var/log/u7s-test-hosts"}/dockerd-${host.id}.log`;
  // as tests/setup-hosts.sh's start_docker: setsid, the log, cd / (the daemon outlives the test)
  Bun.spawn(["setsid", "sh", "-c", 'cd / && exec "$0" /usr/share/docker.io/contrib/dockerd-rootless.sh >>"$1" 2>&1 </dev/null', host.exec, log], { stdin: "ignore", stdout: "ignore", stderr: "ignore" }).unref();
  await eventually("dockerd to answer", async () => ((await runOnHost(host, ["docker", "info"], { timeoutMs: 10_000 })).exitCode === 0 ? true : undefined), 120);
}
