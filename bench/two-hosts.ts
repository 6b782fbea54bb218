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
// Measured with iperf3 (Debian's package: on the host from tests/setup-tools.sh, in the nodes from the cluster test
// image), one TCP stream of a fixed size (`-n`), the receiver's bits_per_second, so TCP slow start is included.
// Where iperf3 is missing (a node on the plain test image), socat + /dev/zero instead, and the footer says so.
// The nodes are plain `u7s up --image` nodes with upstream's default ports; they are removed at the end.
import { parseArgs } from "node:util";
import {
  downOverlayPair,
  loadHostsEnv,
  runOnHost,
  runU7sOnHost,
  upOverlayPair,
  type TestHost,
  type VtepSide,
} from "../tests/e2e/harness.ts";
import { measure, median, pickTool, toolNote, type Place } from "./throughput.ts";

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

const inNode = (side: VtepSide): Place => (script) =>
  runU7sOnHost(side.host, ["exec", "--", "sh", "-c", script], { env: side.env, timeoutMs: 330_000 });
const onHost = (host: TestHost): Place => (script) => runOnHost(host, ["sh", "-c", script], { timeoutMs: 330_000 });

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
  const { tool, missing } = await pickTool({ "on host A": onHost(a.host), "on host B": onHost(b.host), "in node A": inNode(a), "in node B": inNode(b) });
  const pairs = [
    [a, b],
    [b, a],
  ] as const;
  const veth: number[] = [];
  const published: number[] = [];
  const overlay: number[] = [];
  for (const [from, to] of pairs) {
    veth.push(await repeat(() => measure(tool, { mib: vethMib, to: onHost(to.host), listen: to.host.ip, port: PORT, from: onHost(from.host), connect: to.host.ip })));
    // a listener on the node's PORT_KUBE_APISERVER (nothing else listens there in a plain node), reached
    // through the other host's published port: node -> engine -> host -> host -> engine -> node
    const api = Number(to.env.PORT_KUBE_APISERVER ?? 6443);
    published.push(await repeat(() => measure(tool, { mib, to: inNode(to), port: api, from: inNode(from), connect: to.host.ip })));
    overlay.push(await repeat(() => measure(tool, { mib, to: inNode(to), listen: to.podAddr, port: PORT, from: inNode(from), connect: to.podAddr, bind: from.podAddr })));
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
  console.log(`\n${toolNote(tool, missing)}`);
} finally {
  await downOverlayPair([a, b]);
}
