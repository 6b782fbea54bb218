#!/usr/bin/env bun
// bench/two-hosts.ts: pod traffic between the two test hosts (tests/setup-hosts.sh) through the engine's path
// and through u7s's VXLAN relay (issue 17), side by side in one run, as a markdown table:
//   host to host over the veth (the hosts' own network, no engine involved: the ceiling),
//   node to the other host's published TCP port (the engines' port forwarding, no overlay),
//   pod to pod over the Flannel-like VXLAN overlay, each way: TCP (iperf3, one stream, fixed size), UDP at a
//   fixed offered rate (iperf3 -u, 1400-byte datagrams: received rate and loss), ICMP round-trip time (ping,
//   20 echo requests 50 ms apart),
// for both paths: an overlay pair with --vxlan-relay=off (tenant 26: the engine publishes PORT_FLANNEL; slirp4netns
// or pasta carry the VXLAN datagrams) and one with the relay on (tenant 25), up at the same time. Paired: each
// measurement runs on both paths back to back (the order alternating by run), so a busy moment of the shared
// machine hits both; median of N runs. The load average before and after is printed.
//
// Run (as root, after `npm run test:setup` and ./compile.sh):
//   node_modules/.bin/bun bench/two-hosts.ts [--runs 3] [--mib 64] [--veth-mib 1024] [--udp-mbit 500] [--udp-seconds 3]
//     [--node-mtu N]   (NODE_MTU for both pairs: the node network's MTU, flannel.1 gets N - 50; default the engine's 1500)
//     [--udp-window 4M] (iperf3 -w for the UDP rows: a larger socket buffer at both ends, to see which loss is iperf3's own)
//
// Where UDP is lost: each UDP row also counts the receiving node's UDP receive-buffer drops (/proc/net/snmp
// Udp RcvbufErrors, in the node's network namespace, where iperf3 listens on the flannel.1 address), and at the
// end the relay nodes' own counters (`u7s status --json`: what each relay loop took, sent, dropped and why, its
// GRO runs and GSO sends) are printed.
//
// TCP is measured with iperf3 (Debian's package: on the host from tests/setup-tools.sh, in the nodes from the
// cluster test image), one TCP stream of a fixed size (`-n`), the receiver's bits_per_second, so TCP slow start is
// included. Where iperf3 is missing (a node on the plain test image), socat + /dev/zero instead, and the footer says
// so. The images carry no ping: Debian 12's iputils-ping (`apt-get download`, --ping-deb) is copied into the nodes.
import { readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { parseArgs } from "node:util";
import {
  loadHostsEnv,
  removeHostNode,
  runOnHost,
  runU7sOnHost,
  upOverlayPair,
  type TestHost,
  type VtepSide,
} from "../tests/e2e/harness.ts";
import type { RelayStats } from "../lib/relay/relay.ts";
import { measure, measureRtt, measureUdp, median, pickTool, toolNote, type Place } from "./throughput.ts";

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "3" },
    mib: { type: "string", default: "64" },
    "veth-mib": { type: "string", default: "1024" },
    "udp-mbit": { type: "string", default: "500" },
    "udp-seconds": { type: "string", default: "3" },
    ping: { type: "string", default: "/tmp/relaycore-ping/x/bin/ping" },
    "node-mtu": { type: "string" },
    "udp-window": { type: "string" },
  },
});
const runs = Number(values.runs);
const mib = Number(values.mib);
const vethMib = Number(values["veth-mib"]);
const udpMbit = Number(values["udp-mbit"]);
const udpSeconds = Number(values["udp-seconds"]);
if (![runs, mib, vethMib, udpMbit, udpSeconds].every((n) => Number.isInteger(n) && n > 0)) {
  console.error("bench/two-hosts.ts: --runs, --mib, --veth-mib, --udp-mbit and --udp-seconds must be positive integers");
  process.exit(2);
}

const PORT = 5201;
const PING_IN_NODE = "/usr/local/bin/u7s-bench-ping";
const PINGS = 20;

const inNode = (side: VtepSide): Place => (script) =>
  runU7sOnHost(side.host, ["exec", "--", "sh", "-c", script], { env: side.env, timeoutMs: 330_000 });
const onHost = (host: TestHost): Place => (script) => runOnHost(host, ["sh", "-c", script], { timeoutMs: 330_000 });

/** PATHS: the two ways pod traffic can take between the hosts. */
const PATHS = {
  engine: { U7S_TENANT: "26", U7S_VXLAN_RELAY: "off" },
  relay: { U7S_TENANT: "25", U7S_VXLAN_RELAY: "on" },
} as const;
type PathName = keyof typeof PATHS;

/** copyPing puts the ping binary into a node (the node images carry none). */
async function copyPing(side: VtepSide, binary: Buffer): Promise<void> {
  const r = await runU7sOnHost(side.host, ["exec", "--", "sh", "-c", `base64 -d > ${PING_IN_NODE} && chmod 755 ${PING_IN_NODE}`], {
    env: side.env,
    input: binary.toString("base64"),
  });
  if (r.exitCode !== 0) throw new Error(`cannot copy ping into the node on host ${side.host.id}: ${r.stderr}`);
}

/** apiPort is a node's PORT_KUBE_APISERVER (its tenant's), from `u7s config --json`. */
async function apiPort(side: VtepSide): Promise<number> {
  const r = await runU7sOnHost(side.host, ["config", "--json"], { env: side.env });
  return Number((JSON.parse(r.stdout) as Record<string, unknown>).PORT_KUBE_APISERVER);
}

/** rcvbufErrors is the node's UDP RcvbufErrors (/proc/net/snmp, its network namespace): datagrams a full socket buffer dropped. */
async function rcvbufErrors(side: VtepSide): Promise<number> {
  const r = await inNode(side)("grep '^Udp:' /proc/net/snmp");
  const [head, vals] = r.stdout.trim().split("\n").map((l) => l.split(/\s+/));
  const i = head?.indexOf("RcvbufErrors") ?? -1;
  return i < 0 || !vals ? NaN : Number(vals[i]);
}

/** relayCounters is a relay node's stats from `u7s status --json` (vxlan.node.stats), or undefined when it has none. */
async function relayCounters(side: VtepSide): Promise<RelayStats | undefined> {
  const r = await runU7sOnHost(side.host, ["status", "--json"], { env: side.env });
  try {
    return (JSON.parse(r.stdout) as { vxlan?: { node?: { stats?: RelayStats } | null } }).vxlan?.node?.stats;
  } catch {
    return undefined;
  }
}

const hosts = loadHostsEnv();
const load0 = loadavg();
const t0 = performance.now();
const pairs: Partial<Record<PathName, { a: VtepSide; b: VtepSide; fix: string }>> = {};
let pingBinary: Buffer | undefined;
try {
  pingBinary = readFileSync(values.ping);
} catch {
  console.error(`bench/two-hosts.ts: no ping at ${values.ping}: ICMP rows are left out (get it: apt-get download iputils-ping && dpkg-deb -x iputils-ping_*.deb /tmp/relaycore-ping/x)`);
}
try {
  const mtuEnv: Record<string, string> = values["node-mtu"] === undefined ? {} : { NODE_MTU: values["node-mtu"] };
  for (const name of Object.keys(PATHS) as PathName[]) pairs[name] = await upOverlayPair(hosts, { env: { ...PATHS[name], ...mtuEnv }, onlyOwnNodes: true });
  const setupS = (performance.now() - t0) / 1000;
  const engine = pairs.engine!;
  const relay = pairs.relay!;
  if (pingBinary) for (const p of [engine, relay]) for (const side of [p.a, p.b]) await copyPing(side, pingBinary);
  const { tool, missing } = await pickTool({
    "on host A": onHost(engine.a.host),
    "on host B": onHost(engine.b.host),
    "in node A": inNode(engine.a),
    "in node B": inNode(engine.b),
    "in relay node A": inNode(relay.a),
    "in relay node B": inNode(relay.b),
  });
  type Dir = 0 | 1; // 0: A->B, 1: B->A
  const ends = (p: PathName, d: Dir) => (d === 0 ? [pairs[p]!.a, pairs[p]!.b] : [pairs[p]!.b, pairs[p]!.a]) as [VtepSide, VtepSide];
  const samples = new Map<string, number[]>();
  const add = (key: string, v: number) => samples.set(key, [...(samples.get(key) ?? []), v]);
  for (let run = 0; run < runs; run++) {
    const order: PathName[] = run % 2 === 0 ? ["engine", "relay"] : ["relay", "engine"];
    for (const d of [0, 1] as Dir[]) {
      const [from, to] = ends("engine", d);
      add(`veth ${d}`, await measure(tool, { mib: vethMib, to: onHost(to.host), listen: to.host.ip, port: PORT, from: onHost(from.host), connect: to.host.ip }));
      // a listener on the node's PORT_KUBE_APISERVER (nothing else listens there in a plain node), reached
      // through the other host's published port: node -> engine -> host -> host -> engine -> node
      const api = await apiPort(to);
      add(`published ${d}`, await measure(tool, { mib, to: inNode(to), port: api, from: inNode(from), connect: to.host.ip }));
      for (const p of order) {
        const [f, t] = ends(p, d);
        add(`tcp ${p} ${d}`, await measure(tool, { mib, to: inNode(t), listen: t.podAddr, port: PORT, from: inNode(f), connect: t.podAddr, bind: f.podAddr }));
      }
      for (const p of order) {
        const [f, t] = ends(p, d);
        const before = await rcvbufErrors(t);
        const u = await measureUdp({ to: inNode(t), listen: t.podAddr, port: PORT, from: inNode(f), bind: f.podAddr, mbit: udpMbit, seconds: udpSeconds, len: 1400, window: values["udp-window"] });
        add(`udp ${p} ${d}`, u.mbit);
        add(`loss ${p} ${d}`, u.lossPct);
        add(`rcvbuf ${p} ${d}`, (await rcvbufErrors(t)) - before);
      }
      if (pingBinary) {
        for (const p of order) {
          const [f, t] = ends(p, d);
          add(`rtt ${p} ${d}`, await measureRtt(inNode(f), PING_IN_NODE, f.podAddr, t.podAddr, PINGS));
        }
      }
    }
  }
  const load1 = loadavg();
  await Bun.sleep(2500); // the node relays write their status every 2 s
  const counters = await Promise.all([relay.a, relay.b].map((side) => relayCounters(side)));
  const m = (key: string) => median(samples.get(key) ?? [NaN]);
  const n0 = (x: number) => x.toFixed(0);
  const dirName = ["A→B", "B→A"];
  console.log(
    `two test hosts: A ${hosts.a.ip} (${hosts.a.engine}), B ${hosts.b.ip} (${hosts.b.engine}); median of ${runs} paired runs; ` +
      `${vethMib} MiB over the veth, ${mib} MiB otherwise; checksum fix: ${engine.fix}/${relay.fix}; both pairs up + overlay in ${setupS.toFixed(1)} s; ` +
      `${values["node-mtu"] ? `NODE_MTU ${values["node-mtu"]} (flannel.1 ${Number(values["node-mtu"]) - 50}); ` : ""}load average ${load0.map((x) => x.toFixed(2)).join(" ")} before, ${load1.map((x) => x.toFixed(2)).join(" ")} after (${navigator.hardwareConcurrency} cores)\n`,
  );
  console.log("| measure | direction | engine path | VXLAN relay | relay / engine |");
  console.log("|---|---|---:|---:|---:|");
  for (const d of [0, 1] as Dir[]) console.log(`| host to host over the veth, TCP Mbit/s | ${dirName[d]} | ${n0(m(`veth ${d}`))} | | |`);
  for (const d of [0, 1] as Dir[]) console.log(`| node to the other host's published TCP port, Mbit/s | ${dirName[d]} | ${n0(m(`published ${d}`))} | | |`);
  for (const d of [0, 1] as Dir[]) {
    const e = m(`tcp engine ${d}`);
    const r = m(`tcp relay ${d}`);
    console.log(`| pod to pod TCP, Mbit/s | ${dirName[d]} | ${n0(e)} | ${n0(r)} | ${(r / e).toFixed(2)}× |`);
  }
  for (const d of [0, 1] as Dir[]) {
    const e = m(`udp engine ${d}`);
    const r = m(`udp relay ${d}`);
    console.log(
      `| pod to pod UDP, ${udpMbit} Mbit/s offered: received Mbit/s (loss) | ${dirName[d]} | ${n0(e)} (${m(`loss engine ${d}`).toFixed(1)} %) | ` +
        `${n0(r)} (${m(`loss relay ${d}`).toFixed(1)} %) | ${(r / e).toFixed(2)}× |`,
    );
  }
  for (const d of [0, 1] as Dir[]) {
    const sum = (p: PathName) => (samples.get(`rcvbuf ${p} ${d}`) ?? []).reduce((a, b) => a + b, 0);
    console.log(`| … of which dropped at a full socket buffer in the receiving node (RcvbufErrors, all runs) | ${dirName[d]} | ${sum("engine")} | ${sum("relay")} | |`);
  }
  if (pingBinary) {
    for (const d of [0, 1] as Dir[]) {
      const e = m(`rtt engine ${d}`);
      const r = m(`rtt relay ${d}`);
      console.log(`| pod to pod ICMP round trip, ms (avg of ${PINGS}) | ${dirName[d]} | ${e.toFixed(3)} | ${r.toFixed(3)} | ${(r / e).toFixed(2)}× |`);
    }
  }
  console.log(`\n${toolNote(tool, missing)} UDP: iperf3 -u -l 1400 -t ${udpSeconds}${values["udp-window"] ? ` -w ${values["udp-window"]}` : ""}, the receiver's rate and loss.`);
  ["A", "B"].forEach((h, i) => {
    const s = counters[i];
    if (!s) return void console.log(`relay node ${h}: no counters (u7s status --json has no vxlan.node.stats)`);
    const l = (x: RelayStats["loops"]["egress"]) => `${x.wakeups} wake-ups, ${x.recvCalls} recvmmsg, ${x.datagrams} datagrams in ${x.groRuns} GRO runs, ${x.gsoSends} GSO sends, ${x.gsoFallbacks} GSO fallbacks`;
    console.log(
      `relay node ${h} (GRO ${s.gro ? "on" : "off"}): egress ${s.egress.packets} datagrams (${l(s.loops.egress)}); ingress ${s.ingress.packets} (${l(s.loops.ingress)}); ` +
        `dropped ${JSON.stringify(s.dropped)}`,
    );
  });
} finally {
  // Every node this bench may have made, also of a pair that came up only halfway; nobody else's.
  for (const name of Object.keys(PATHS) as PathName[]) {
    for (const host of [hosts.a, hosts.b]) await removeHostNode(host, `u7s-${host.hostname}-t${PATHS[name].U7S_TENANT}`, { ...PATHS[name] });
  }
}
