/**
 * A host reboot with the VXLAN relay on (u7s's default), on the two test hosts (tests/setup-hosts.sh:
 * Docker on A, Podman on B), with the nodes' real flannel.1 as tests/e2e/two-hosts.test.ts sets it up.
 * A reboot is simulated per node, touching nothing of other tests: the node is stopped as at shutdown,
 * the relay's host side is killed, $XDG_RUNTIME_DIR/u7s is removed (a reboot empties /run/user/UID), and
 * the engine starts the node again as at boot by its restart policy (Podman: `podman start --all
 * --filter restart-policy=always` as podman-restart.service does, narrowed to this node; Docker: the node
 * has restart policy always, and `docker start` stands in for dockerd starting it at boot, so host A's
 * dockerd, which other tests use, is not restarted).
 * The node must boot (its relay mounts are not under the runtime directory); the test hosts have no
 * systemd user manager, so nothing starts the host side: `u7s status` says so and that `u7s up` restores
 * the relay, and after `u7s up` traffic crosses through the relay again (its own counters).
 * Tenant 27 on A and B is this file's; its nodes are removed before and after.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  describeResult,
  downOverlayPair,
  eventually,
  FLANNEL_VXLAN_SCRIPT,
  loadHostsEnv,
  removeHostNode,
  runOnHost,
  runU7sOnHost,
  type CommandResult,
  type HostsEnv,
  type TestHost,
  upOverlayPair,
  type VtepSide,
} from "./harness.ts";

const TIMEOUT_MS = 600_000;
/** TENANT: this file's tenant on A and B (other suites use other tenants of the same hosts at the same time). */
const TENANT = { U7S_TENANT: "27", U7S_VXLAN_RELAY: "" };

let env: HostsEnv;
async function removeOwnNodes(): Promise<void> {
  for (const host of [env.a, env.b]) await removeHostNode(host, `u7s-${host.hostname}-t27`, TENANT);
}
beforeAll(async () => {
  env = loadHostsEnv();
  await removeOwnNodes();
}, TIMEOUT_MS);
afterAll(removeOwnNodes, TIMEOUT_MS);

async function u7s(host: TestHost, args: readonly string[], extraEnv: Record<string, string>): Promise<CommandResult> {
  const r = await runU7sOnHost(host, args, { env: extraEnv, timeoutMs: 240_000 });
  if (r.exitCode !== 0) throw new Error(`on host ${host.id} (${host.engine}): ${describeResult(["u7s", ...args], r)}`);
  return r;
}

async function onHost(host: TestHost, argv: readonly string[]): Promise<CommandResult> {
  const r = await runOnHost(host, argv, { timeoutMs: 180_000 });
  if (r.exitCode !== 0) throw new Error(`on host ${host.id}: ${describeResult(argv, r)}`);
  return r;
}

interface Vxlan {
  path: "relay" | "engine";
  why: string;
  hostSide: { pid: number; socket: string } | null;
  hostUnit: string | null;
  node: { pid: number; peers: Record<string, number>; stats: { egress: { packets: number }; ingress: { packets: number } } } | null;
}

async function vxlan(side: VtepSide): Promise<Vxlan> {
  return JSON.parse((await u7s(side.host, ["status", "--json"], side.env)).stdout).vxlan;
}

async function relayUp(side: VtepSide, peer: VtepSide, seconds = 90): Promise<Vxlan> {
  return eventually(`host ${side.host.id}: the relay path with peer ${peer.host.ip}`, async () => {
    const v = await vxlan(side);
    if (v.path === "relay" && v.node && peer.host.ip in v.node.peers) return v;
    throw new Error(`u7s status --json .vxlan: ${JSON.stringify({ ...v, node: v.node && { pid: v.node.pid, peers: v.node.peers } })}`);
  }, seconds);
}

async function nodeSh(side: VtepSide, script: string): Promise<string> {
  return (await u7s(side.host, ["exec", "--", "sh", "-c", script], side.env)).stdout;
}

/** udp sends five datagrams from one node's pod address to the other's through flannel.1 and expects them there. */
async function udp(from: VtepSide, to: VtepSide): Promise<void> {
  const port = 5027;
  const receiver = nodeSh(to, `rm -f /tmp/u7s-udp; timeout 6 socat -u UDP4-RECV:${port},bind=${to.podAddr} OPEN:/tmp/u7s-udp,creat,append >/dev/null 2>&1; cat /tmp/u7s-udp`);
  await Bun.sleep(800);
  await nodeSh(from, `for i in 1 2 3 4 5; do echo u7s-udp-$i | socat -u - UDP4-SENDTO:${to.podAddr}:${port},bind=${from.podAddr}; sleep 0.3; done`);
  expect((await receiver).match(/u7s-udp-\d/g)?.length ?? 0, `UDP from host ${from.host.id} to host ${to.host.id}`).toBeGreaterThanOrEqual(4);
}

/** simulateReboot stops a side's node as at shutdown, kills its relay's host side, empties the runtime directory's u7s part, and starts the node as the engine does at boot. */
async function simulateReboot(side: VtepSide): Promise<void> {
  const { host, nodeName } = side;
  const pid = (await vxlan(side)).hostSide?.pid;
  expect(pid, `host ${host.id}: the host side runs before the reboot`).toBeNumber();
  await onHost(host, [host.engine, "stop", nodeName]);
  await onHost(host, ["kill", "-KILL", String(pid)]);
  const runtime = env.raw[`U7S_HOST_${host.id.toUpperCase()}_XDG_RUNTIME_DIR`];
  expect(runtime).toMatch(/^\/run\/user\/\d+$/);
  await onHost(host, ["rm", "-rf", `${runtime}/u7s`]);
  const policy = await onHost(host, [host.engine, "inspect", "--format", "{{.HostConfig.RestartPolicy.Name}}", nodeName]);
  expect(policy.stdout.trim()).toBe("always");
  if (host.engine === "podman") {
    // podman-restart.service's command (Podman 4.3), narrowed to this node (filters of different keys are ANDed)
    const id = (await onHost(host, ["podman", "inspect", "--format", "{{.Id}}", nodeName])).stdout.trim();
    const r = await onHost(host, ["podman", "start", "--all", "--filter", "restart-policy=always", "--filter", `name=^${nodeName}$`]);
    // it started this node and nothing else (it prints the ids it started)
    expect(r.stdout.trim().split("\n")).toEqual([id]);
  } else {
    await onHost(host, ["docker", "start", nodeName]);
  }
}

describe("a host reboot with the VXLAN relay (tenant 27 on host A: Docker, host B: Podman)", () => {
  test("the nodes boot again; status says the host side is not running and that `u7s up` restores the relay; after `u7s up` traffic goes through it both ways", async () => {
    const { a, b } = await upOverlayPair(env, { env: TENANT, onlyOwnNodes: true });
    try {
      for (const [side, peer] of [[a, b], [b, a]] as const) {
        // the socket (0600) in the node's state directory (0700), which a reboot keeps: not under /run
        const socket = (await relayUp(side, peer)).hostSide!.socket;
        expect(socket).toBe(`${side.host.home}/.local/state/u7s/${side.host.hostname}/${side.nodeName}/relay/vxlan-relay.sock`);
        const st = await onHost(side.host, ["stat", "-c", "%a %F", socket, socket.replace(/\/[^/]+$/, "")]);
        expect(st.stdout.trim().split("\n")).toEqual(["600 socket", "700 directory"]);
      }
      for (const side of [a, b]) await simulateReboot(side);
      for (const side of [a, b]) {
        // booted without a u7s command: running, its relay waiting for the host side, no steering (egress through the engine)
        const v = await eventually(`host ${side.host.id}: node ${side.nodeName} running again, without its host side`, async () => {
          const v = await vxlan(side);
          if (v.why.includes("host side is not running")) return v;
          throw new Error(`u7s status --json .vxlan: ${JSON.stringify(v)}`);
        }, 120);
        expect({ path: v.path, hostSide: v.hostSide, hostUnit: v.hostUnit }).toEqual({ path: "engine", hostSide: null, hostUnit: null });
        expect(v.why).toContain("no systemd --user unit starts it at boot");
        expect(v.why).toContain("`u7s up` restores the relay");
        await eventually(`host ${side.host.id}: the node relay waits for the host side`, async () => {
          const journal = await nodeSh(side, "journalctl -u u7s-vxlan-relay --no-pager -o cat -b");
          return journal.includes("waiting for the host side") ? true : undefined;
        }, 60);
        expect(await nodeSh(side, "iptables -t nat -S 2>/dev/null | grep U7S-VXLAN-RELAY; true")).toBe("");
      }
      // `u7s up` brings the relay back, and says it will not come back by itself after the next reboot (no user systemd here)
      for (const side of [a, b]) {
        const r = await u7s(side.host, ["up", "--no-init", "--image", env.clusterImage ?? env.testImage], side.env);
        expect(r.stdout + r.stderr).toContain("the relay's host side will not come back by itself after a reboot");
      }
      // flannel.1 lives in the node's namespace: Flannel makes it again after a restart; here the test does
      for (const [self, peer] of [[a, b], [b, a]] as const) {
        await u7s(self.host, ["exec", "--", "sh", "-c", FLANNEL_VXLAN_SCRIPT, "flannel-vxlan", self.nodeIp, String(self.portFlannel), self.podAddr, self.mac, peer.podAddr, peer.mac, peer.host.ip], self.env);
      }
      const before = { a: await relayUp(a, b), b: await relayUp(b, a) };
      await udp(a, b);
      await udp(b, a);
      for (const [side, peer, was] of [[a, b, before.a], [b, a, before.b]] as const) {
        await eventually(`host ${side.host.id}: the relay's counters to grow both ways`, async () => {
          const now = (await relayUp(side, peer)).node!.stats;
          return now.egress.packets > was.node!.stats.egress.packets && now.ingress.packets > was.node!.stats.ingress.packets ? true : undefined;
        }, 20);
      }
    } finally {
      await downOverlayPair([a, b], { onlyOwnNodes: true });
    }
  }, TIMEOUT_MS);
});
