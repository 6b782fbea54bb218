#!/usr/bin/env bun
// bench/two-hosts.ts: TCP throughput between the two test hosts (tests/setup-hosts.sh), as a markdown table:
//   host to host over the veth (the hosts' own network, no engine involved),
//   node to the other host's published TCP port (the engines' port forwarding, no overlay),
//   pod address to pod address over the Flannel-like VXLAN overlay (what cross-host pod traffic takes),
// each way (A->B, B->A), median of N runs, and the overlay's ratio to the veth.
//
// Run (as root, after `npm run test:setup` and ./compile.sh):
//   node_modules/.bin/bun bench/two-hosts.ts [--runs 3] [--mib 64] [--veth-mib 1024]
//
// Bytes come from /dev/zero through socat (256 KiB buffers) (the test node image has no iperf3); the time is taken inside
// the sending namespace or node around the whole transfer (connect to close), so it includes TCP slow start.
// The nodes are plain `u7s up --image` nodes with upstream's default ports; they are removed at the end.
import { parseArgs } from "node:util";
import {
  describeResult,
  downOverlayPair,
  loadHostsEnv,
  runOnHost,
  runU7sOnHost,
  upOverlayPair,
  type CommandResult,
  type TestHost,
  type VtepSide,
} from "../tests/e2e/harness.ts";

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "3" },
    mib: { type: "string", default: "64" },
    "veth-mib": { type: "string", default: "1024" },
  },
});
const runs = Number(values.runs);
const mib = Number(values.mib);
const vethMib = Number(values["veth-mib"]);
if (![runs, mib, vethMib].every((n) => Number.isInteger(n) && n > 0)) {
  console.error("bench/two-hosts.ts: --runs, --mib and --veth-mib must be positive integers");
  process.exit(2);
}

const PORT = 5201;

/** Place is where a sh script runs: a test host (as its user, in its namespaces) or a node (u7s exec). */
type Place = (script: string) => Promise<CommandResult>;

const inNode = (side: VtepSide): Place => (script) =>
  runU7sOnHost(side.host, ["exec", "--", "sh", "-c", script], { env: side.env, timeoutMs: 330_000 });
const onHost = (host: TestHost): Place => (script) => runOnHost(host, ["sh", "-c", script], { timeoutMs: 330_000 });

function ok(what: string, r: CommandResult): CommandResult {
  if (r.exitCode !== 0) throw new Error(`${what}: ${describeResult([what], r)}`);
  return r;
}

/**
 * measure sends sizeMib MiB of zeros from one place to a listener at another and returns Mbit/s,
 * checking every byte arrived. The sender starts only once the listener is up: through a port
 * forwarder, a connection made earlier is accepted by the forwarder and then reset.
 */
async function measure(sizeMib: number, to: Place, listen: string, port: number, from: Place, connect: string, bind?: string): Promise<number> {
  const bytes = sizeMib * 1048576;
  const received = to(`timeout 120 socat -u -b 262144 TCP-LISTEN:${port},bind=${listen},reuseaddr - | wc -c`);
  ok("waiting for the listener", await to(`for i in $(seq 100); do ss -Hltn 'sport = :${port}' | grep -q . && exit 0; sleep 0.1; done; exit 1`));
  // socat reads /dev/zero itself (readbytes), 256 KiB at a time: no pipe, few system calls
  const target = `TCP:${connect}:${port},connect-timeout=5${bind ? `,bind=${bind}` : ""}`;
  const sent = from(`set -e; t0=$(date +%s%N); timeout 100 socat -u -b 262144 OPEN:/dev/zero,readbytes=${bytes} ${target}; t1=$(date +%s%N); echo $((t1 - t0))`);
  const [rr, sr] = await Promise.all([received, sent]);
  ok("receiver", rr);
  ok("sender", sr);
  const got = Number(rr.stdout.trim().split(/\s+/).pop());
  if (got !== bytes) throw new Error(`receiver got ${got} bytes, expected ${bytes}`);
  const ns = Number(sr.stdout.trim().split(/\s+/).pop());
  return (bytes * 8) / (ns / 1e9) / 1e6;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((x, y) => x - y);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function repeat(fn: () => Promise<number>): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < runs; i++) xs.push(await fn());
  return median(xs);
}

const hosts = loadHostsEnv();
const t0 = performance.now();
const { a, b, fix } = await upOverlayPair(hosts);
const setupS = (performance.now() - t0) / 1000;
const rows: [string, number, number][] = [];
try {
  const pairs = [
    [a, b],
    [b, a],
  ] as const;
  const veth: number[] = [];
  const published: number[] = [];
  const overlay: number[] = [];
  for (const [from, to] of pairs) {
    veth.push(await repeat(() => measure(vethMib, onHost(to.host), to.host.ip, PORT, onHost(from.host), to.host.ip)));
    // a listener on the node's PORT_KUBE_APISERVER (nothing else listens there in a plain node), reached
    // through the other host's published port: node -> engine -> host -> host -> engine -> node
    const api = Number(to.env.PORT_KUBE_APISERVER ?? 6443);
    published.push(await repeat(() => measure(mib, inNode(to), "0.0.0.0", api, inNode(from), to.host.ip)));
    overlay.push(await repeat(() => measure(mib, inNode(to), to.podAddr, PORT, inNode(from), to.podAddr, from.podAddr)));
  }
  rows.push(["host to host over the veth", veth[0]!, veth[1]!]);
  rows.push(["node to the other host's published TCP port", published[0]!, published[1]!]);
  rows.push(["pod to pod over the VXLAN overlay", overlay[0]!, overlay[1]!]);
  const fmt = (n: number) => n.toFixed(0).padStart(6);
  console.log(`two test hosts: A ${hosts.a.ip} (${hosts.a.engine}), B ${hosts.b.ip} (${hosts.b.engine}); ` +
    `median of ${runs} runs; ${vethMib} MiB over the veth, ${mib} MiB otherwise; checksum fix: ${fix}; nodes up + overlay in ${setupS.toFixed(1)} s\n`);
  console.log("| path | A→B Mbit/s | B→A Mbit/s |");
  console.log("|---|---:|---:|");
  for (const [name, ab, ba] of rows) console.log(`| ${name} | ${fmt(ab)} | ${fmt(ba)} |`);
  const ratio = (i: 0 | 1) => (((i ? overlay[1]! : overlay[0]!) / (i ? veth[1]! : veth[0]!)) * 100).toFixed(1);
  console.log(`| overlay / veth | ${ratio(0).padStart(5)} % | ${ratio(1).padStart(5)} % |`);
} finally {
  await downOverlayPair([a, b]);
}
